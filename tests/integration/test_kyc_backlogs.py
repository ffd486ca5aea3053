"""kyc-tier's queues in the metrics: the audit outbox and the erasure backlog
report their depth and the age of their oldest item, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from identity_runtime.errors import Unavailable
from identity_store.types import utcnow
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.recovery import ErasureBacklog
from services.kyc_tier.store import Store
from tests.integration.test_kyc_trust import onboarded
from tests.support.kyc_fakes import KycFakes, fake_kyc_core, new_org


def gauge(name: str, queue: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"queue": queue})


@pytest.fixture
def fakes() -> KycFakes:
    return KycFakes()


@pytest.fixture
async def core(database_url: str, fakes: KycFakes) -> AsyncIterator[KycTierCore]:
    async with fake_kyc_core(database_url, fakes) as built:
        yield built


async def test_the_erasure_backlog_is_measured_until_the_worker_completes_it(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    customer_id = await onboarded(core, fakes, org_id)
    backlog = ErasureBacklog(Store(core.database, core.relay), utcnow)
    assert await backlog.measure() == 0
    assert gauge("identity_queue_depth", "erasures") == 0
    assert gauge("identity_queue_oldest_age_seconds", "erasures") == 0

    working_shred = fakes.matcher.shred

    async def down(customer_id: str) -> int:
        raise Unavailable("matching is unavailable")

    fakes.matcher.shred = down  # type: ignore[method-assign]
    receipt = await core.erasure.erase(org_id, customer_id, "")
    assert receipt.state == "in_progress"
    assert await backlog.measure() == 1
    assert gauge("identity_queue_depth", "erasures") == 1
    age = gauge("identity_queue_oldest_age_seconds", "erasures")
    assert age is not None and age >= 0

    fakes.matcher.shred = working_shred  # type: ignore[method-assign]
    assert await core.erasure.resume_pending() == 1
    assert await backlog.measure() == 0
    assert gauge("identity_queue_depth", "erasures") == 0


async def test_the_audit_outbox_depth_counts_undelivered_entries(
    core: KycTierCore, fakes: KycFakes
) -> None:
    await core.relay.stop()  # nothing is delivered while the test looks
    org_id = await new_org(core)
    await onboarded(core, fakes, org_id)
    depth, age = await core.relay.measure()
    assert depth > 0 and age >= 0
    assert gauge("identity_queue_depth", "audit_outbox") == depth
    await core.relay.flush()
    assert await core.relay.measure() == (0, 0.0)
    assert gauge("identity_queue_oldest_age_seconds", "audit_outbox") == 0
