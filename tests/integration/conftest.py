"""kyc-tier's core over fake ports.

- `kyc_core` (and `kyc_fakes`, `kyc_org`): one SQLite database migrated once
  per module; each test gets the fakes back at their defaults. A module may
  define `kyc_clock` to fix the time.
- `core` (and `fakes`): a core of its own per test, on each database
  (`database_url`: SQLite and PostgreSQL); whatever the test made kyc-tier
  audit, the audit service must accept. A module may define its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from identity_store import migrate
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.migrations import HISTORY
from services.kyc_tier.ports import Clock
from tests.support.kyc_fakes import (
    KycFakes,
    assert_audit_entries_acceptable,
    fake_kyc_core,
    new_org,
)


@pytest.fixture(scope="module")
def kyc_clock() -> Clock | None:
    return None


@pytest.fixture(scope="module")
def _kyc_module_fakes() -> KycFakes:
    return KycFakes()


@pytest.fixture(scope="module")
async def _kyc_module_core(
    tmp_path_factory: pytest.TempPathFactory, _kyc_module_fakes: KycFakes, kyc_clock: Clock | None
) -> AsyncIterator[KycTierCore]:
    url = f"sqlite:///{tmp_path_factory.mktemp('kyc-tier') / 'identity.db'}"
    migrate.upgrade(url, HISTORY)
    async with fake_kyc_core(url, _kyc_module_fakes, kyc_clock) as core:
        yield core


@pytest.fixture
def kyc_fakes(_kyc_module_fakes: KycFakes) -> KycFakes:
    _kyc_module_fakes.reset()
    return _kyc_module_fakes


@pytest.fixture
def kyc_core(_kyc_module_core: KycTierCore, kyc_fakes: KycFakes) -> KycTierCore:
    return _kyc_module_core


@pytest.fixture(scope="module")
async def kyc_org(_kyc_module_core: KycTierCore) -> str:
    return await new_org(_kyc_module_core)


@pytest.fixture
def fakes() -> KycFakes:
    return KycFakes()


@pytest.fixture
async def core(database_url: str, fakes: KycFakes) -> AsyncIterator[KycTierCore]:
    async with fake_kyc_core(database_url, fakes) as built:
        yield built
        # Whatever a test made kyc-tier audit, the audit service accepts.
        await assert_audit_entries_acceptable(built)
