"""Per-organisation liveness policy on real models and a real server: the PAD
models an organisation is pinned to, its PAD threshold, and the flash-check and
shadow switches arrive in the request and apply to that call only; a policy the
deployment cannot honour is refused before the challenge is spent."""

from __future__ import annotations

import uuid

import grpc
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY

from identity_capture.policy import LivenessPolicy
from identity_cli.schema import migrate_all
from identity_platform_api.liveness.v1 import liveness_pb2
from identity_runtime.errors import DomainError
from services.capture_quality.service import SPEC as CAPTURE_QUALITY
from services.liveness.policy import PadPolicies
from services.liveness.service import SPEC as LIVENESS
from tests.service.test_liveness import Client, reason_of, sequence
from tests.support import channel, start_service
from tests.support.biometrics import SPOOF, flash_frames, photo

pytestmark = [pytest.mark.models]

CUSTOMER = "cus_policy"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def servers(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('policy') / 'identity.db'}"
    migrate_all(url)
    quality = await start_service(CAPTURE_QUALITY)
    # Live: minifasnet-v2 alone; v1se loaded for pinning and scored in shadow.
    liveness = await start_service(
        LIVENESS,
        {
            "LIVENESS_DATABASE_URL": url,
            "LIVENESS_PAD_MODELS": "minifasnet-v2",
            "LIVENESS_PAD_PINNABLE_MODELS": "minifasnet-v1se",
            "LIVENESS_PAD_SHADOW_MODELS": "minifasnet-v1se",
            # As the chart's canary Deployment runs it.
            "LIVENESS_TRACK": "canary",
        },
    )
    yield quality, liveness
    for server in (liveness, quality):
        await server.stop(0)


@pytest_asyncio.fixture(loop_scope="session")
async def client(servers):
    quality, liveness = servers
    async with channel(quality) as q, channel(liveness) as lv:
        yield Client(q, lv)


async def request(client: Client, name: str, policy=None, flash: bool = True):
    # A customer per request: each registers a new device, and a customer may
    # register only LIVENESS_MAX_NEW_DEVICES_PER_DAY of them a day.
    customer = f"{CUSTOMER}_{uuid.uuid4().hex[:12]}"
    signer = await client.device(customer)
    challenge = await client.challenge(customer)
    colours = sequence(challenge)
    # Without a flash response: the colours in the wrong order.
    frames = flash_frames(photo(SPOOF / name), colours if flash else colours[::-1])
    built = await client.capture(signer, challenge, frames, customer)
    if policy is not None:
        built.policy.CopyFrom(policy)
    return built


def shadow_count() -> float:
    return sum(
        sample.value
        for family in REGISTRY.collect()
        if family.name == "identity_shadow_decisions"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels["stage"] == "pad"
    )


async def test_pinned_models_and_threshold_decide_for_the_organisation(client) -> None:
    default = await client.check(await request(client, "image_F1.jpg"))
    assert [m.model_id for m in default.pad_models] == ["minifasnet-v2"]
    assert not default.live
    assert "PAD_ATTACK_SUSPECTED" in [r.code for r in default.reasons]

    pinned = await client.check(
        await request(
            client, "image_F1.jpg", liveness_pb2.LivenessPolicy(pad_models=["minifasnet-v1se"])
        )
    )
    assert [m.model_id for m in pinned.pad_models] == ["minifasnet-v1se"]

    # A threshold below the attack's score (about 0.01) lets it pass: the switch decides.
    lenient = await client.check(
        await request(client, "image_F1.jpg", liveness_pb2.LivenessPolicy(pad_threshold=0.0001))
    )
    assert lenient.pad_threshold == pytest.approx(0.0001)
    assert lenient.pad_score == pytest.approx(default.pad_score, abs=0.1)
    assert lenient.live and lenient.decision_basis == "pad+challenge"
    assert default.pad_threshold == pytest.approx(0.5)


async def test_the_flash_switch_decides_on_pad_and_the_device_alone(client) -> None:
    unflashed = await request(client, "image_T1.jpg", flash=False)
    refused = await client.check(unflashed)
    assert not refused.live and refused.decision_basis == "pad+challenge"
    assert any(r.code.startswith("FLASH_") for r in refused.reasons)

    off = liveness_pb2.LivenessPolicy(flash_check_disabled=True)
    passed = await client.check(await request(client, "image_T1.jpg", off, flash=False))
    assert passed.live and passed.decision_basis == "pad+attestation"
    assert passed.flash_score == 0.0 and list(passed.reasons) == []
    # PAD still decides: an attack is refused with the flash check off.
    attack = await client.check(await request(client, "image_F2.jpg", off, flash=False))
    assert not attack.live
    assert [r.code for r in attack.reasons] == ["PAD_ATTACK_SUSPECTED"]


async def test_the_shadow_switch_skips_the_candidate(client) -> None:
    before = shadow_count()
    await client.check(await request(client, "image_T1.jpg"))
    assert shadow_count() - before == 1
    await client.check(
        await request(client, "image_T1.jpg", liveness_pb2.LivenessPolicy(shadow_disabled=True))
    )
    assert shadow_count() - before == 1


@pytest.mark.parametrize(
    ("policy", "code", "reason"),
    [
        (
            liveness_pb2.LivenessPolicy(pad_models=["minifasnet-v9"]),
            grpc.StatusCode.FAILED_PRECONDITION,
            "MODEL_NOT_CONFIGURED",
        ),
        (
            liveness_pb2.LivenessPolicy(pad_threshold=1.5),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_FIELD",
        ),
        (
            liveness_pb2.LivenessPolicy(pad_models=["x" * 65]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_FIELD",
        ),
    ],
)
async def test_a_policy_the_deployment_cannot_honour_is_refused_and_spends_nothing(
    client, policy, code, reason
) -> None:
    refused = await request(client, "image_T1.jpg", policy)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.check(refused)
    assert caught.value.code() == code
    assert reason_of(caught) == reason
    # The challenge and the nonce were not consumed: the same capture passes
    # under the default policy.
    refused.ClearField("policy")
    assert (await client.check(refused)).live


def test_without_pad_only_the_default_policy_is_honoured() -> None:
    policies = PadPolicies(None)
    assert policies.scorer(LivenessPolicy()) is None
    for policy in (
        LivenessPolicy(flash_check=False),
        LivenessPolicy(pad_models=("minifasnet-v2",)),
        LivenessPolicy(pad_threshold=0.4),
    ):
        with pytest.raises(DomainError) as caught:
            policies.scorer(policy)
        assert caught.value.reason == "POLICY_UNSUPPORTED"


def test_the_loaded_models_and_the_track_are_exported(servers) -> None:
    """identity_model_info{track}: what the canary rules join each process's series to."""
    _, liveness = servers
    for runner in liveness.core.liveness.pad.runners:
        manifest = runner.manifest
        labels = {"stage": manifest.role, "model": manifest.id, "version": manifest.version}
        assert REGISTRY.get_sample_value("identity_model_info", {**labels, "track": "canary"}) == 1
    pinnable = {r.manifest.id for r in liveness.core.liveness.policies.pinnable}
    assert pinnable == {"minifasnet-v1se"}
