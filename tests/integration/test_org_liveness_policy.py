"""An organisation's liveness policy (pinned PAD models, PAD threshold, the
flash-check and shadow switches) is kyc-tier's, switched by the operator
without a redeploy (`identity orgs set-liveness-policy`), sent with the
organisation's next liveness check, and every switch is audited. Both databases."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from identity_cli.main import main
from services.kyc_tier import models, org_policies
from services.kyc_tier.adapters.liveness import policy_message
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.ports import DEFAULT_LIVENESS_POLICY, LivenessPolicy
from services.liveness.mapping import org_policy
from tests.integration.test_kyc_trust import step_up_customer, step_up_request
from tests.support.kyc_fakes import (
    KycFakes,
    new_org,
    rows,
)


def cli(database_url: str, *args: str) -> int:
    return main(["orgs", "set-liveness-policy", *args, "--database-url", database_url])


async def test_a_switched_policy_goes_with_the_next_liveness_check_and_is_audited(
    database_url: str, core: KycTierCore, fakes: KycFakes, capsys: pytest.CaptureFixture[str]
) -> None:
    org_id = await new_org(core)
    other_org = await new_org(core)
    customer_id = await step_up_customer(core, fakes, org_id)
    other_customer = await step_up_customer(core, fakes, other_org)

    await core.step_up.step_up(org_id, step_up_request(customer_id))
    assert fakes.liveness.policies[-1] == DEFAULT_LIVENESS_POLICY

    switched = await asyncio.to_thread(
        cli,
        database_url,
        *("--org", org_id, "--pad-models", "minifasnet-v1se, minifasnet-v2"),
        *("--pad-threshold", "0.6", "--flash-check", "off"),
    )
    assert switched == 0
    # The CLI's line (the core's background sweeps may log before it).
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        f"{org_id}: liveness policy pad_models minifasnet-v1se,minifasnet-v2, "
        "pad_threshold 0.6, flash_check off, shadow on"
    )
    await core.step_up.step_up(org_id, step_up_request(customer_id))
    pinned = LivenessPolicy(("minifasnet-v1se", "minifasnet-v2"), 0.6, False, True)
    assert fakes.liveness.policies[-1] == pinned
    # Another organisation keeps the defaults.
    await core.step_up.step_up(other_org, step_up_request(other_customer))
    assert fakes.liveness.policies[-1] == DEFAULT_LIVENESS_POLICY

    # Switches change only what they name.
    assert await asyncio.to_thread(cli, database_url, "--org", org_id, "--shadow", "off") == 0
    assert (
        await asyncio.to_thread(
            cli, database_url, "--org", org_id, "--default-models", "--default-threshold"
        )
        == 0
    )
    capsys.readouterr()
    await core.step_up.step_up(org_id, step_up_request(customer_id))
    assert fakes.liveness.policies[-1] == LivenessPolicy((), None, False, False)

    audits = await rows(core, models.AuditOutbox, action="org.liveness_policy")
    assert [(a.actor, a.subject, a.details) for a in audits] == [
        (
            "system:identity-cli",
            f"org:{org_id}",
            {
                "old_pad_models": "default",
                "new_pad_models": "minifasnet-v1se,minifasnet-v2",
                "old_pad_threshold": "default",
                "new_pad_threshold": "0.6",
                "old_flash_check": "on",
                "new_flash_check": "off",
            },
        ),
        ("system:identity-cli", f"org:{org_id}", {"old_shadow": "on", "new_shadow": "off"}),
        (
            "system:identity-cli",
            f"org:{org_id}",
            {
                "old_pad_models": "minifasnet-v1se,minifasnet-v2",
                "new_pad_models": "default",
                "old_pad_threshold": "0.6",
                "new_pad_threshold": "default",
            },
        ),
    ]


async def test_bad_policies_and_unknown_organisations_are_refused_without_a_write(
    database_url: str, core: KycTierCore, capsys: pytest.CaptureFixture[str]
) -> None:
    org_id = await new_org(core)
    for bad in (
        ("--pad-threshold", "1.5"),
        ("--pad-threshold", "0"),
        ("--pad-threshold", "nan"),
        ("--pad-models", "MiniFASNet V2"),
        ("--pad-models", ",".join(f"m{i}" for i in range(9))),
    ):
        assert await asyncio.to_thread(cli, database_url, "--org", org_id, *bad) == 2, bad
        assert "pad_" in capsys.readouterr().err
    assert await asyncio.to_thread(cli, database_url, "--org", org_id) == 2
    assert "nothing to switch" in capsys.readouterr().err
    assert await asyncio.to_thread(cli, database_url, "--org", "org_nobody", "--shadow", "off") == 2
    assert "no organisation 'org_nobody'" in capsys.readouterr().err
    assert await rows(core, models.AuditOutbox, action="org.liveness_policy") == []
    assert await rows(core, org_policies.OrgLivenessPolicy) == []


@pytest.mark.parametrize(
    "policy",
    [
        DEFAULT_LIVENESS_POLICY,
        LivenessPolicy(("minifasnet-v2",), 0.35, False, False),
        LivenessPolicy((), 0.7, True, False),
    ],
)
def test_the_policy_reaches_liveness_unchanged(policy: LivenessPolicy) -> None:
    """kyc-tier's policy through the contract, as liveness reads it."""
    received = org_policy(policy_message(policy))
    if policy.pad_threshold is not None:
        # float32 on the wire
        assert received.pad_threshold == pytest.approx(policy.pad_threshold)
        received = dataclasses.replace(received, pad_threshold=policy.pad_threshold)
    assert received == policy
