"""The NIK's lookup hash is bound to the organisation (probe 4, finding 9):
the same person at two organisations has two unrelated hashes, so the
customers table links no one across partners; search by NIK still finds the
organisation's own customer, also one hashed before (re-indexed at start-up
by recovery.LegacyNikIndex). On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import update

from services.kyc_tier import models, pii
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.customers import CustomerInput
from services.kyc_tier.recovery import LegacyNikIndex
from services.kyc_tier.store import Store
from tests.support import TEST_PEPPER, unique_name
from tests.support.kyc_fakes import new_org, rows

NIK = "3273024107950003"


async def new_customer(core: KycTierCore, org_id: str, nik: str = NIK) -> models.Customer:
    created = await core.customers.create(
        org_id,
        CustomerInput(external_id=unique_name("ext"), full_name="Siti Rahayu", nik=nik),
    )
    (row,) = await rows(core, models.Customer, customer_id=created.customer.customer_id)
    return row


async def found_by_nik(core: KycTierCore, org_id: str, nik: str = NIK) -> list[str]:
    page = await core.dashboard.search(org_id, nik, 50, "")
    return [view.customer_id for view in page.items]


def legacy_hash(index_key: str, nik: str) -> str:
    """How nik_hash was made before it was bound to the organisation."""
    key = hashlib.sha256(b"identity-platform/nik-index/v1\x00" + index_key.encode()).digest()
    return hmac.new(key, nik.encode(), hashlib.sha256).hexdigest()


async def test_one_person_at_two_organisations_has_two_unrelated_hashes(
    core: KycTierCore,
) -> None:
    mine, theirs = await new_org(core), await new_org(core)
    at_mine, at_theirs = await new_customer(core, mine), await new_customer(core, theirs)
    assert at_mine.nik_hash and at_theirs.nik_hash and at_mine.nik_hash != at_theirs.nik_hash
    assert at_mine.nik_index_version == at_theirs.nik_index_version == pii.INDEX_VERSION
    assert await found_by_nik(core, mine) == [at_mine.customer_id]
    assert await found_by_nik(core, theirs) == [at_theirs.customer_id]
    assert await found_by_nik(core, mine, "3273024107950011") == []


async def test_a_nik_hashed_before_is_found_then_re_indexed_at_start_up(
    core: KycTierCore,
) -> None:
    mine, theirs = await new_org(core), await new_org(core)
    old_mine, old_theirs = await new_customer(core, mine), await new_customer(core, theirs)
    before = legacy_hash(TEST_PEPPER, NIK)  # KYC_TIER_PII_INDEX_KEY in tests

    def as_before(session) -> None:
        session.execute(
            update(models.Customer)
            .where(models.Customer.customer_id.in_([old_mine.customer_id, old_theirs.customer_id]))
            .values(nik_hash=before, nik_index_version=None)
        )

    await core.database.run(as_before)
    # Meanwhile search still finds the organisation's own, and only it.
    assert await found_by_nik(core, mine) == [old_mine.customer_id]

    reindex = LegacyNikIndex(Store(core.database, core.relay), core.vault, batch_size=1)
    assert await reindex.sweep() == 2
    assert await reindex.sweep() == 0
    (now_mine,) = await rows(core, models.Customer, customer_id=old_mine.customer_id)
    (now_theirs,) = await rows(core, models.Customer, customer_id=old_theirs.customer_id)
    assert before not in (now_mine.nik_hash, now_theirs.nik_hash)
    assert now_mine.nik_hash != now_theirs.nik_hash
    assert now_mine.nik_index_version == pii.INDEX_VERSION
    assert await found_by_nik(core, mine) == [old_mine.customer_id]
    assert await found_by_nik(core, theirs) == [old_theirs.customer_id]
