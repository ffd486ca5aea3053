"""An organisation's face-match threshold is switched by the operator without a
redeploy (`identity orgs set-match-threshold`): the next step-up of that
organisation matches with it, and every switch is audited. Both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from identity_cli.main import main
from services.kyc_tier import models
from services.kyc_tier.bootstrap import KycTierCore
from tests.integration.test_kyc_trust import (
    CARD,
    ktp_capture,
    new_customer,
    step_up_customer,
    step_up_request,
)
from tests.support.kyc_fakes import (
    KycFakes,
    assert_audit_entries_acceptable,
    fake_kyc_core,
    new_org,
    rows,
)


@pytest.fixture
def fakes() -> KycFakes:
    return KycFakes()


@pytest.fixture
async def core(database_url: str, fakes: KycFakes) -> AsyncIterator[KycTierCore]:
    async with fake_kyc_core(database_url, fakes) as built:
        yield built
        await assert_audit_entries_acceptable(built)


async def test_a_switched_threshold_applies_to_the_next_step_up_and_is_audited(
    database_url: str, core: KycTierCore, fakes: KycFakes, capsys: pytest.CaptureFixture[str]
) -> None:
    org_id = await new_org(core)
    other_org = await new_org(core)
    customer_id = await step_up_customer(core, fakes, org_id)
    other_customer = await step_up_customer(core, fakes, other_org)

    def cli(*args: str) -> int:
        return main(["orgs", "set-match-threshold", *args, "--database-url", database_url])

    await core.step_up.step_up(org_id, step_up_request(customer_id))
    assert fakes.matcher.verified[-1] == (customer_id, None)  # the deployment's default

    assert await asyncio.to_thread(cli, "--org", org_id, "--threshold", "0.61") == 0
    # The last line: a background task of the core may log to stdout meanwhile.
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        f"{org_id}: match threshold default -> 0.61 (false-match rate 1e-06)"
    )
    await core.step_up.step_up(org_id, step_up_request(customer_id))
    assert fakes.matcher.verified[-1] == (customer_id, 0.61)
    # Another organisation keeps its own.
    await core.step_up.step_up(other_org, step_up_request(other_customer))
    assert fakes.matcher.verified[-1] == (other_customer, None)

    assert await asyncio.to_thread(cli, "--org", org_id, "--default") == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        f"{org_id}: match threshold 0.61 -> default (false-match rate 9.7e-05)"
    )
    await core.step_up.step_up(org_id, step_up_request(customer_id))
    assert fakes.matcher.verified[-1] == (customer_id, None)

    audits = await rows(core, models.AuditOutbox, action="org.match_threshold")
    assert [(a.actor, a.subject, a.details) for a in audits] == [
        ("system:identity-cli", f"org:{org_id}", {"old": "default", "new": "0.61"}),
        ("system:identity-cli", f"org:{org_id}", {"old": "0.61", "new": "default"}),
    ]


async def test_bad_thresholds_and_unknown_organisations_are_refused_without_a_write(
    database_url: str, core: KycTierCore, capsys: pytest.CaptureFixture[str]
) -> None:
    org_id = await new_org(core)

    def cli(*args: str) -> int:
        return main(["orgs", "set-match-threshold", *args, "--database-url", database_url])

    # "0.2" is a cosine, but below the range matching accepts (its default 0.48 - 0.1).
    for bad in ("1.5", "0", "-0.2", "nan", "0.2", "0.99"):
        assert await asyncio.to_thread(cli, "--org", org_id, "--threshold", bad) == 2, bad
        assert "match_threshold" in capsys.readouterr().err
    assert await asyncio.to_thread(cli, "--org", "org_nobody", "--threshold", "0.5") == 2
    assert "no organisation 'org_nobody'" in capsys.readouterr().err
    assert await rows(core, models.AuditOutbox, action="org.match_threshold") == []
    (org,) = await rows(core, models.Org, org_id=org_id)
    assert org.match_threshold is None


async def test_an_enrollment_searches_duplicates_at_the_organisations_threshold(
    core: KycTierCore, fakes: KycFakes
) -> None:
    """matching keeps no organisation records: kyc-tier sends the threshold
    with each enrollment too (its duplicate search), not only with matches."""
    fakes.quality.ktp = CARD
    org_id = await new_org(core, match_threshold=0.66)
    await ktp_capture(core, org_id, await new_customer(core, org_id))
    default_org = await new_org(core)
    await ktp_capture(core, default_org, await new_customer(core, default_org))
    assert fakes.matcher.enrolled_thresholds == [0.66, None]
