"""An organisation's face-match threshold is switched by the operator without a
redeploy (`identity orgs set-match-threshold`): the next step-up of that
organisation matches with it, and every switch is audited. Both databases."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from identity_cli.main import main
from identity_runtime import signing
from identity_runtime.errors import DomainError
from services.kyc_tier import models
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.flows.dukcapil import DukcapilRequest, DukcapilVerdict, evidence_document
from tests.integration.test_kyc_trust import (
    CARD,
    ktp_capture,
    new_customer,
    step_up_customer,
    step_up_request,
)
from tests.support.kyc_fakes import (
    KycFakes,
    new_org,
    rows,
)


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


# -- the other organisation settings from the command line ---------------------------


def _verdict_request(customer_id: str, secret: bytes) -> DukcapilRequest:
    verified_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    verdict = DukcapilVerdict({"nik": True, "full_name": True}, 0.0, "DKC-CLI", verified_at)
    document = evidence_document(customer_id, verdict, verified_at)
    return DukcapilRequest(customer_id, verdict, signing.sign(secret, document))


async def test_the_cli_shows_rotates_sets_and_clears_settings_audited_without_secrets(
    database_url: str,
    core: KycTierCore,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    org_id = await new_org(core)
    customer_id = await new_customer(core, org_id)
    # The CLI seals with the deployment's KEK keyring (here: the test core's).
    monkeypatch.setenv("MATCHING_KEK_KEYRING", core.vault.keys.kms._keyring.to_json())  # type: ignore[attr-defined]

    def cli(*args: str) -> int:
        return main(["orgs", *args, "--org", org_id, "--database-url", database_url])

    assert await asyncio.to_thread(cli, "set-evidence-secret", "--rotate") == 0
    secret = base64.b64decode(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(secret) == 32
    signed = await core.dukcapil.submit(org_id, _verdict_request(customer_id, secret))
    assert signed.assessment.signed is True
    with pytest.raises(DomainError) as refused:
        await core.dukcapil.submit(org_id, _verdict_request(customer_id, b"w" * 32))
    assert refused.value.reason == "EVIDENCE_SIGNATURE_INVALID"

    chosen = tmp_path / "secret"
    chosen.write_bytes(b"an operator-chosen evidence secret, 40b\n")
    assert await asyncio.to_thread(cli, "set-evidence-secret", "--secret-file", str(chosen)) == 0
    operator = chosen.read_bytes().strip()
    assert (
        await core.dukcapil.submit(org_id, _verdict_request(customer_id, operator))
    ).assessment.signed
    chosen.write_bytes(b"short")
    assert await asyncio.to_thread(cli, "set-evidence-secret", "--secret-file", str(chosen)) == 2
    assert "secret" in capsys.readouterr().err

    assert await asyncio.to_thread(cli, "set-default-webhook", "--webhook", "whk_nobody") == 2
    assert "no such webhook" in capsys.readouterr().err
    hook = await core.webhooks.create(
        org_id, "https://hooks.example.com/x", ["customer.erased"], ""
    )
    hook_id = hook.webhook.webhook_id
    assert await asyncio.to_thread(cli, "set-default-webhook", "--webhook", hook_id) == 0
    assert (
        capsys.readouterr().out.strip().splitlines()[-1] == f"{org_id}: default webhook {hook_id}"
    )
    [listed] = await core.webhooks.list(org_id)
    assert listed.is_default is True
    assert await asyncio.to_thread(cli, "settings") == 0
    out = capsys.readouterr().out
    shown, _ = json.JSONDecoder().raw_decode(out[out.index("{") :])
    assert shown["dukcapil_evidence_secret_set"] is True
    assert shown["default_webhook_id"] == hook_id
    assert shown["match_threshold"]["is_default"] is True
    assert shown["match_threshold"]["range"] == [0.38, 0.95]  # matching's, from MATCHING_*
    assert 0 < shown["match_threshold"]["false_match_rate"] < 1e-3
    assert "operator-chosen" not in out
    assert await asyncio.to_thread(cli, "set-evidence-secret", "--clear") == 0
    unsigned = await core.dukcapil.submit(org_id, _verdict_request(customer_id, b"x"))
    assert unsigned.assessment.signed is False  # no secret: accepted unsigned

    assert await asyncio.to_thread(cli, "set-default-webhook", "--none") == 0
    assert not (await core.webhooks.list(org_id))[0].is_default
    defaults = await rows(core, models.AuditOutbox, action="org.default_webhook", org_id=org_id)
    assert sorted((a.id, a.details["new"]) for a in defaults)[-1][1] == "none"
    audits = await rows(core, models.AuditOutbox, action="org.evidence_secret", org_id=org_id)
    assert [(a.actor, a.outcome, a.details) for a in sorted(audits, key=lambda a: a.id)] == [
        ("system:identity-cli", "success", {"change": "rotated"}),
        ("system:identity-cli", "success", {"change": "set"}),
        ("system:identity-cli", "success", {"change": "cleared"}),
    ]
