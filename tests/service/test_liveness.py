"""Liveness on real models and real servers: PAD on the spoof photos, flash challenges,
device signatures, replayed bundles and reused challenges."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import grpc
import numpy as np
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from identity_capture.limits import MAX_FRAMES
from identity_capture.sdk import SdkSigner
from identity_capture.signatures import ED25519
from identity_cli.schema import migrate_all
from identity_ktp.card import find_card
from identity_ktp.flash import card_colour
from identity_platform_api.capture_quality.v1 import capture_quality_pb2, capture_quality_pb2_grpc
from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.liveness.v1 import liveness_pb2, liveness_pb2_grpc
from identity_runtime.settings import SettingsError, load_settings
from identity_runtime.status import error_info, status_from_rpc_error
from services.capture_quality.service import SPEC as CAPTURE_QUALITY
from services.liveness.checks import MAX_NEW_DEVICES_PER_DAY
from services.liveness.models import Challenge
from services.liveness.service import SPEC as LIVENESS
from services.liveness.settings import LivenessSettings
from tests.support import channel, start_service
from tests.support.biometrics import (
    SPOOF,
    check_request,
    flash_frames,
    jpeg,
    photo,
    screen_flash_frames,
)
from tests.support.ktp import ktp_path
from tests.support.meshauth import caller_metadata

pytestmark = [pytest.mark.models]

ORG = "org_liveness"
FACE = types_pb2.CHALLENGE_PURPOSE_FACE_LIVENESS
STEP_UP = types_pb2.CHALLENGE_PURPOSE_STEP_UP


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('liveness') / 'identity.db'}"
    migrate_all(url)
    return url


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def quality_server():
    server = await start_service(CAPTURE_QUALITY)
    yield server
    await server.stop(0)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def liveness_server(database):
    # No PAD setting: the weights packaged with identity_inference are the default.
    server = await start_service(LIVENESS, {"LIVENESS_DATABASE_URL": database})
    yield server
    await server.stop(0)


class Client:
    """What kyc-tier does for a capture: challenge, SDK frames, quality, liveness."""

    def __init__(self, quality_channel, liveness_channel):
        self.quality = capture_quality_pb2_grpc.CaptureQualityServiceStub(quality_channel)
        self.liveness = liveness_pb2_grpc.LivenessServiceStub(liveness_channel)
        self.org_id = ORG

    @property
    def metadata(self) -> list[tuple[str, str]]:
        """A fresh caller token for each call (tokens live a minute)."""
        return caller_metadata(self.org_id)

    async def device(self, customer_id: str, algorithm: str = "ecdsa_p256_sha256") -> SdkSigner:
        signer = SdkSigner(algorithm)
        enum = (
            types_pb2.KEY_ALGORITHM_ED25519
            if algorithm == ED25519
            else types_pb2.KEY_ALGORITHM_ECDSA_P256_SHA256
        )
        reply = await self.liveness.RegisterDevice(
            liveness_pb2.RegisterDeviceRequest(
                device_id=signer.device_id,
                customer_id=customer_id,
                algorithm=enum,
                public_key=signer.public_key_pem(),
                platform="android",
            ),
            metadata=self.metadata,
        )
        assert reply.created
        return signer

    async def challenge(self, customer_id: str, purpose: int = FACE) -> types_pb2.FlashChallenge:
        reply = await self.liveness.IssueChallenge(
            liveness_pb2.IssueChallengeRequest(customer_id=customer_id, purpose=purpose),
            metadata=self.metadata,
        )
        return reply.challenge

    async def capture(
        self,
        signer: SdkSigner,
        challenge,
        frames: list[bytes],
        customer_id: str,
        purpose: int = FACE,
        **sign,
    ):
        assessment = await self.quality.AssessFace(
            capture_quality_pb2.AssessFaceRequest(
                frames=[types_pb2.Image(data=f) for f in frames], include_crops=True
            )
        )
        signed = signer.sign_bundle(challenge_id=challenge.challenge_id, frames=frames, **sign)
        return check_request(
            customer_id=customer_id,
            purpose=purpose,
            challenge_id=challenge.challenge_id,
            signed=signed,
            assessment=assessment,
            flash_duration_ms=challenge.flash_duration_ms,
        )

    async def check(self, request):
        return await self.liveness.CheckLiveness(request, metadata=self.metadata)


@pytest_asyncio.fixture(loop_scope="session")
async def client(quality_server, liveness_server):
    async with channel(quality_server) as q, channel(liveness_server) as lv:
        yield Client(q, lv)


def reason_of(caught: pytest.ExceptionInfo) -> str:
    return error_info(status_from_rpc_error(caught.value)).reason


def sequence(challenge) -> list[str]:
    return [c.hex for c in challenge.sequence]


@pytest.mark.parametrize("name", ["image_T1.jpg", "image_F1.jpg", "image_F2.jpg"])
async def test_spoof_photos_are_refused_and_the_live_face_accepted(client, name) -> None:
    signer = await client.device("cus_pad")
    challenge = await client.challenge("cus_pad")
    frames = flash_frames(photo(SPOOF / name), sequence(challenge))
    reply = await client.check(await client.capture(signer, challenge, frames, "cus_pad"))
    codes = [r.code for r in reply.reasons]
    assert reply.decision_basis == "pad+challenge"
    assert [m.model_id for m in reply.pad_models] == ["minifasnet-v2", "minifasnet-v1se"]
    assert reply.flash_score == 1.0
    if name == "image_T1.jpg":
        assert reply.live, codes
        assert reply.pad_score > 0.9
        assert codes == []
    else:
        assert not reply.live
        assert reply.pad_score < 0.5
        assert codes == ["PAD_ATTACK_SUSPECTED"]


async def test_flash_colours_in_another_order_fail(client) -> None:
    signer = await client.device("cus_order")
    challenge = await client.challenge("cus_order")
    issued = sequence(challenge)
    shuffled = issued[:]
    while shuffled == issued:
        random.shuffle(shuffled)
    frames = flash_frames(photo(SPOOF / "image_T1.jpg"), shuffled)
    reply = await client.check(await client.capture(signer, challenge, frames, "cus_order"))
    assert not reply.live
    assert [r.code for r in reply.reasons] == ["FLASH_ORDER_MISMATCH"]
    assert reply.flash_score <= 0.5


async def test_frames_without_the_flash_fail(client) -> None:
    signer = await client.device("cus_static")
    challenge = await client.challenge("cus_static")
    still = photo(SPOOF / "image_T1.jpg")
    frames = flash_frames(still, ["#FFFFFF"] * len(challenge.sequence))
    reply = await client.check(await client.capture(signer, challenge, frames, "cus_static"))
    assert not reply.live
    assert [r.code for r in reply.reasons] == ["FLASH_RESPONSE_MISSING"]


@pytest.mark.parametrize("baseline_has_face", [True, False])
async def test_a_baseline_frame_without_the_face_fails(client, baseline_has_face) -> None:
    """The flash frames answer the flash; PAD and matching judge the unflashed
    baseline's face: a baseline without a face (a blank frame in front of
    someone else's flash frames) is not live."""
    signer = await client.device("cus_blank_baseline")
    challenge = await client.challenge("cus_blank_baseline")
    frames = flash_frames(photo(SPOOF / "image_T1.jpg"), sequence(challenge))
    request = await client.capture(signer, challenge, frames, "cus_blank_baseline")
    request.frames.add(frame_index=len(frames), baseline=True, face_found=baseline_has_face)
    reply = await client.check(request)
    codes = [r.code for r in reply.reasons]
    if baseline_has_face:
        assert reply.live and codes == []
    else:
        assert not reply.live
        assert codes == ["FACE_LOST_BETWEEN_FRAMES"] and reply.flash_score == 0.0


async def test_a_flash_frame_before_the_flash_is_refused_and_consumes_nothing(client) -> None:
    """Only the baseline precedes the first colour: a flash frame with a
    negative offset is a malformed request, whatever the caller checked, and
    is never taken as the first colour's frame."""
    signer = await client.device("cus_early_frame")
    challenge = await client.challenge("cus_early_frame")
    frames = flash_frames(photo(SPOOF / "image_T1.jpg"), sequence(challenge))
    good = await client.capture(signer, challenge, frames, "cus_early_frame")
    # The baseline, taken before the first colour, keeps its negative offset.
    good.frames.add(frame_index=len(frames), offset_ms=-200, baseline=True, face_found=True)

    early = liveness_pb2.CheckLivenessRequest()
    early.CopyFrom(good)
    early.frames[0].offset_ms = -1
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.check(early)
    info = error_info(status_from_rpc_error(caught.value))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (info.reason, info.metadata["field"]) == ("INVALID_FIELD", "frames[0].offset_ms")
    assert "flash frame's offset must be 0 or more" in caught.value.details()

    # Neither the challenge nor the nonce was spent: the genuine capture passes.
    reply = await client.check(good)
    assert reply.live and reply.flash_score == 1.0, [r.code for r in reply.reasons]


@pytest.mark.parametrize("late", ["extra frames", "the last colour's frame"])
async def test_a_frame_after_the_flash_is_no_colours_evidence(client, late) -> None:
    """A frame at or past the end of the sequence was taken after the last
    colour went off: it is left out, never counted as the last colour's frame
    (frames lit by the first colour would otherwise outweigh it)."""
    customer = "cus_late_frame"
    signer = await client.device(customer)
    challenge = await client.challenge(customer)
    frames = flash_frames(photo(SPOOF / "image_T1.jpg"), sequence(challenge))
    request = await client.capture(signer, challenge, frames, customer)
    end_ms = len(challenge.sequence) * challenge.flash_duration_ms
    if late == "extra frames":
        for k in range(3):
            after = request.frames.add()
            after.CopyFrom(request.frames[0])
            after.offset_ms = end_ms + 100 * k
        reply = await client.check(request)
        assert reply.live and reply.flash_score == 1.0, [r.code for r in reply.reasons]
    else:
        request.frames[-1].offset_ms = end_ms
        reply = await client.check(request)
        assert not reply.live and reply.flash_score == 0.0
        assert [r.code for r in reply.reasons] == ["TOO_FEW_FRAMES"]


async def test_a_replayed_bundle_and_a_reused_challenge_are_refused(client) -> None:
    signer = await client.device("cus_replay", ED25519)
    challenge = await client.challenge("cus_replay")
    frames = flash_frames(photo(SPOOF / "image_T1.jpg"), sequence(challenge))
    request = await client.capture(signer, challenge, frames, "cus_replay")
    assert (await client.check(request)).live

    # The same bundle again: its nonce was used.
    with pytest.raises(grpc.aio.AioRpcError) as replay:
        await client.check(request)
    assert replay.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert reason_of(replay) == "NONCE_REPLAYED"
    assert "replay" in replay.value.details()

    # A fresh, validly signed bundle on the consumed challenge.
    again = await client.capture(signer, challenge, frames, "cus_replay")
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await client.check(again)
    assert reused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(reused) == "CHALLENGE_ALREADY_USED"


async def test_protocol_violations_consume_nothing(client) -> None:
    signer = await client.device("cus_proto")
    challenge = await client.challenge("cus_proto")
    frames = flash_frames(photo(SPOOF / "image_T1.jpg"), sequence(challenge))
    good = await client.capture(signer, challenge, frames, "cus_proto")

    forged = liveness_pb2.CheckLivenessRequest()
    forged.CopyFrom(good)
    forged.attestation.signature = SdkSigner().sign_digest(good.attestation.bundle_sha256)
    tampered = liveness_pb2.CheckLivenessRequest()
    tampered.CopyFrom(good)
    tampered.computed_bundle_sha256 = "0" * 64
    wrong_purpose = liveness_pb2.CheckLivenessRequest()
    wrong_purpose.CopyFrom(good)
    wrong_purpose.purpose = STEP_UP
    stale = await client.capture(
        signer, challenge, frames, "cus_proto", captured_at=datetime.now(UTC) - timedelta(hours=1)
    )
    unknown = liveness_pb2.CheckLivenessRequest()
    unknown.CopyFrom(good)
    unknown.challenge_id = "chl_does_not_exist"
    too_many = liveness_pb2.CheckLivenessRequest()
    too_many.CopyFrom(good)
    while len(too_many.frames) <= MAX_FRAMES:
        too_many.frames.append(good.frames[0])

    expected = [
        (forged, grpc.StatusCode.PERMISSION_DENIED, "BUNDLE_SIGNATURE_INVALID"),
        (tampered, grpc.StatusCode.INVALID_ARGUMENT, "BUNDLE_HASH_MISMATCH"),
        (wrong_purpose, grpc.StatusCode.PERMISSION_DENIED, "CHALLENGE_MISMATCH"),
        (stale, grpc.StatusCode.FAILED_PRECONDITION, "BUNDLE_STALE"),
        (unknown, grpc.StatusCode.NOT_FOUND, "CHALLENGE_NOT_FOUND"),
        (too_many, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD"),
    ]
    for request, code, reason in expected:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.check(request)
        assert (caught.value.code(), reason_of(caught)) == (code, reason)

    # None of those used the challenge or the nonce: the genuine bundle still passes.
    assert (await client.check(good)).live


def attestation_of(request: liveness_pb2.CheckLivenessRequest):
    """The CheckAttestation request kyc-tier sends before any model work."""
    return liveness_pb2.CheckAttestationRequest(
        customer_id=request.customer_id,
        purpose=request.purpose,
        challenge_id=request.challenge_id,
        attestation=request.attestation,
        computed_bundle_sha256=request.computed_bundle_sha256,
        resume=request.resume,
    )


async def test_check_attestation_refuses_protocol_violations_and_consumes_nothing(
    client,
) -> None:
    signer = await client.device("cus_attest")
    challenge = await client.challenge("cus_attest")
    frames = flash_frames(photo(SPOOF / "image_T1.jpg"), sequence(challenge))
    good = await client.capture(signer, challenge, frames, "cus_attest")

    async def attest(request: liveness_pb2.CheckLivenessRequest):
        return await client.liveness.CheckAttestation(
            attestation_of(request), metadata=client.metadata
        )

    # Success: the device, and nothing spent (asked twice, same answer).
    assert (await attest(good)).device_id == signer.device_id
    assert (await attest(good)).device_id == signer.device_id

    forged = liveness_pb2.CheckLivenessRequest()
    forged.CopyFrom(good)
    forged.attestation.signature = SdkSigner().sign_digest(good.attestation.bundle_sha256)
    tampered = liveness_pb2.CheckLivenessRequest()
    tampered.CopyFrom(good)
    tampered.computed_bundle_sha256 = "0" * 64
    wrong_purpose = liveness_pb2.CheckLivenessRequest()
    wrong_purpose.CopyFrom(good)
    wrong_purpose.purpose = STEP_UP
    stale = await client.capture(
        signer, challenge, frames, "cus_attest", captured_at=datetime.now(UTC) - timedelta(hours=1)
    )
    unknown = liveness_pb2.CheckLivenessRequest()
    unknown.CopyFrom(good)
    unknown.challenge_id = "chl_does_not_exist"
    other_device = liveness_pb2.CheckLivenessRequest()
    other_device.CopyFrom(good)
    other_device.attestation.device_id = "dev_never_registered"
    for request, code, reason in [
        (forged, grpc.StatusCode.PERMISSION_DENIED, "BUNDLE_SIGNATURE_INVALID"),
        (tampered, grpc.StatusCode.INVALID_ARGUMENT, "BUNDLE_HASH_MISMATCH"),
        (wrong_purpose, grpc.StatusCode.PERMISSION_DENIED, "CHALLENGE_MISMATCH"),
        (stale, grpc.StatusCode.FAILED_PRECONDITION, "BUNDLE_STALE"),
        (unknown, grpc.StatusCode.NOT_FOUND, "CHALLENGE_NOT_FOUND"),
        (other_device, grpc.StatusCode.NOT_FOUND, "DEVICE_NOT_FOUND"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await attest(request)
        assert (caught.value.code(), reason_of(caught)) == (code, reason)

    # Nothing was consumed by any of them: the genuine bundle still passes.
    assert (await client.check(good)).live
    # Once spent, the pre-check refuses the replay and the spent challenge.
    with pytest.raises(grpc.aio.AioRpcError) as replay:
        await attest(good)
    assert (replay.value.code(), reason_of(replay)) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "NONCE_REPLAYED",
    )
    resumed = liveness_pb2.CheckLivenessRequest()
    resumed.CopyFrom(good)
    resumed.resume = True
    assert (await attest(resumed)).device_id == signer.device_id  # the same bundle, resumed
    again = await client.capture(signer, challenge, frames, "cus_attest")
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await attest(again)
    assert (reused.value.code(), reason_of(reused)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "CHALLENGE_ALREADY_USED",
    )


async def test_check_attestation_refuses_an_expired_challenge(client, liveness_server) -> None:
    signer = await client.device("cus_attest_late")
    challenge = await client.challenge("cus_attest_late")
    frames = flash_frames(photo(SPOOF / "image_T1.jpg"), sequence(challenge))
    request = await client.capture(signer, challenge, frames, "cus_attest_late")
    checks = liveness_server.core.liveness

    # The challenge's expiry moved into the past (the capture time stays fresh).
    def expire(session) -> None:
        row = session.get(Challenge, challenge.challenge_id)
        row.expires_at = checks.clock() - timedelta(seconds=1)

    await checks.database.run(expire)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.liveness.CheckAttestation(attestation_of(request), metadata=client.metadata)
    assert (caught.value.code(), reason_of(caught)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "CHALLENGE_EXPIRED",
    )


async def test_a_device_registered_twice_with_another_key_is_refused(client) -> None:
    signer = await client.device("cus_dev")
    other = SdkSigner(device_id=signer.device_id)
    request = liveness_pb2.RegisterDeviceRequest(
        device_id=signer.device_id,
        customer_id="cus_dev",
        algorithm=types_pb2.KEY_ALGORITHM_ECDSA_P256_SHA256,
        public_key=signer.public_key_der(),
    )
    again = await client.liveness.RegisterDevice(request, metadata=client.metadata)
    assert not again.created
    request.public_key = other.public_key_pem()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.liveness.RegisterDevice(request, metadata=client.metadata)
    assert reason_of(caught) == "DEVICE_ALREADY_REGISTERED"
    request.public_key = b"not a key"
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await client.liveness.RegisterDevice(request, metadata=client.metadata)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def register_request(
    signer: SdkSigner, customer_id: str, public_key: bytes | None = None
) -> liveness_pb2.RegisterDeviceRequest:
    return liveness_pb2.RegisterDeviceRequest(
        device_id=signer.device_id,
        customer_id=customer_id,
        algorithm=types_pb2.KEY_ALGORITHM_ECDSA_P256_SHA256,
        public_key=signer.public_key_pem() if public_key is None else public_key,
    )


async def refused_registration(
    client: Client, request: liveness_pb2.RegisterDeviceRequest
) -> tuple[grpc.StatusCode, Any]:
    """The gRPC code and ErrorInfo of a registration that must be refused."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.liveness.RegisterDevice(request, metadata=client.metadata)
    return caught.value.code(), error_info(status_from_rpc_error(caught.value))


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(lambda first, second: first + second + b"trailing garbage\n", id="two-keys"),
        pytest.param(lambda first, _: first + b"trailing garbage\n", id="trailing-text"),
        pytest.param(lambda first, _: b"a note\n" + first, id="leading-text"),
        pytest.param(lambda first, _: first + first, id="the-key-twice"),
    ],
)
async def test_a_public_key_document_holding_anything_but_one_key_is_refused(client, extra) -> None:
    """The PEM loader reads the first block and ignores the rest: a second key
    or trailing text would be silently dropped. Nothing is registered."""
    signer, other = SdkSigner(), SdkSigner()
    request = register_request(
        signer, "cus_pem", extra(signer.public_key_pem(), other.public_key_pem())
    )
    code, info = await refused_registration(client, request)
    assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD")
    assert info.metadata["field"] == "public_key"
    # One key, whitespace (CRLF line ends) around it, is registered.
    request.public_key = b"\r\n" + signer.public_key_pem().replace(b"\n", b"\r\n") + b"\n\n"
    reply = await client.liveness.RegisterDevice(request, metadata=client.metadata)
    assert reply.created


async def test_a_customer_may_register_at_most_the_daily_device_limit(client) -> None:
    """Each device key can sign the customer's bundles: the next new one past
    the day's limit (10 by default) is refused, nothing stored; the registered
    ones stay usable and re-registering one of them is still a no-op."""
    signers = [await client.device("cus_many") for _ in range(MAX_NEW_DEVICES_PER_DAY)]
    request = register_request(SdkSigner(), "cus_many")
    code, info = await refused_registration(client, request)
    assert (code, info.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "DEVICE_LIMIT_REACHED")
    assert info.metadata["max_devices"] == str(MAX_NEW_DEVICES_PER_DAY)
    assert 0 < int(info.metadata["retry_after_seconds"]) <= 24 * 3600
    again = register_request(signers[0], "cus_many")
    assert not (await client.liveness.RegisterDevice(again, metadata=client.metadata)).created
    # Another customer's count is their own.
    request.customer_id = "cus_few"
    assert (await client.liveness.RegisterDevice(request, metadata=client.metadata)).created


async def test_an_erased_customers_devices_are_forgotten_and_their_bundles_refused(
    client,
) -> None:
    """kyc-tier's erasure step: the devices (ids, public keys) and unanswered
    challenges go; another customer's stay; the device id can then serve a
    new customer, and the erased customer's signed bundles no longer verify."""
    phone, tablet = await client.device("cus_gone"), await client.device("cus_gone", ED25519)
    kept = await client.device("cus_kept")
    answered, unanswered = await client.challenge("cus_gone"), await client.challenge("cus_gone")
    frames = flash_frames(photo(SPOOF / "image_T1.jpg"), sequence(answered))
    assert (await client.check(await client.capture(phone, answered, frames, "cus_gone"))).live
    late = await client.capture(tablet, unanswered, frames, "cus_gone")

    async def forget(customer_id: str) -> liveness_pb2.ForgetCustomerDevicesResponse:
        return await client.liveness.ForgetCustomerDevices(
            liveness_pb2.ForgetCustomerDevicesRequest(customer_id=customer_id),
            metadata=client.metadata,
        )

    forgotten = await forget("cus_gone")
    assert (forgotten.devices_forgotten, forgotten.challenges_forgotten) == (2, 1)
    assert (await forget("cus_gone")).devices_forgotten == 0  # idempotent
    # A bundle the erased customer's device signed before is refused now.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.check(late)
    assert (refused.value.code(), reason_of(refused)) == (
        grpc.StatusCode.NOT_FOUND,
        "DEVICE_NOT_FOUND",
    )
    # The same phone can be registered for someone else; the other customer's device still works.
    reused = await client.liveness.RegisterDevice(
        liveness_pb2.RegisterDeviceRequest(
            device_id=phone.device_id,
            customer_id="cus_new",
            algorithm=types_pb2.KEY_ALGORITHM_ECDSA_P256_SHA256,
            public_key=phone.public_key_pem(),
        ),
        metadata=client.metadata,
    )
    assert reused.created
    challenge = await client.challenge("cus_kept")
    frames = flash_frames(photo(SPOOF / "image_T1.jpg"), sequence(challenge))
    assert (await client.check(await client.capture(kept, challenge, frames, "cus_kept"))).live
    for bad in ("", "c" * 41):
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await forget(bad)
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(status_from_rpc_error(invalid.value)).metadata["field"] == "customer_id"


async def test_with_pad_disabled_decisions_say_challenge_only(quality_server, database) -> None:
    server = await start_service(
        LIVENESS, {"LIVENESS_DATABASE_URL": database, "LIVENESS_PAD_ENABLED": "false"}
    )
    try:
        async with channel(quality_server) as q, channel(server) as lv:
            client = Client(q, lv)
            signer = await client.device("cus_nopad")
            challenge = await client.challenge("cus_nopad")
            frames = flash_frames(photo(SPOOF / "image_F2.jpg"), sequence(challenge))
            reply = await client.check(await client.capture(signer, challenge, frames, "cus_nopad"))
        assert reply.decision_basis == "challenge-only"
        assert reply.live  # the screen replay shows the flash: only PAD could catch it
        assert [r.code for r in reply.reasons] == ["PAD_MODEL_NOT_CONFIGURED"]
        assert list(reply.pad_models) == []
        ready, detail = await server.core.ready()
        assert ready and detail.startswith("challenge-only")
    finally:
        await server.stop(0)


CARD = types_pb2.CHALLENGE_PURPOSE_KTP_CAPTURE


def card_request(signer: SdkSigner, challenge, frames: list[bytes], customer_id: str):
    """A KTP capture as kyc-tier sends it: the baseline card, then the card's
    colour on each flash frame (what CheckKtp measures, with identity_ktp.flash)."""
    image = cv2.imread(str(ktp_path("ktp_captured.jpg")))
    location = find_card(image)
    assert location is not None
    signed = signer.sign_bundle(challenge_id=challenge.challenge_id, frames=[jpeg(image), *frames])
    request = check_request(
        customer_id=customer_id,
        purpose=CARD,
        challenge_id=challenge.challenge_id,
        signed=signed,
        assessment=capture_quality_pb2.AssessFaceResponse(),
        flash_duration_ms=challenge.flash_duration_ms,
    )
    for index, data in enumerate(frames):
        frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        (cb, cg, cr), (bb, bg, br) = card_colour(frame, location.corners, image.shape[:2])
        request.frames.add(
            frame_index=index + 1,
            offset_ms=index * challenge.flash_duration_ms,
            colour=types_pb2.ColourSample(
                face_b=cb, face_g=cg, face_r=cr, background_b=bb, background_g=bg, background_r=br
            ),
            face_found=True,
        )
    return request


async def test_a_ktp_card_that_answers_the_flash_is_accepted(client) -> None:
    signer = await client.device("cus_card")
    challenge = await client.challenge("cus_card", CARD)
    card = cv2.imread(str(ktp_path("ktp_captured.jpg")))
    frames = flash_frames(card, sequence(challenge))
    reply = await client.check(card_request(signer, challenge, frames, "cus_card"))
    assert reply.live, [r.code for r in reply.reasons]
    assert reply.decision_basis == "card-flash"
    assert reply.flash_score == 1.0
    assert list(reply.pad_models) == []


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("screen", "CARD_FLASH_RESPONSE_MISSING"),
        ("another order", "FLASH_ORDER_MISMATCH"),
        ("no flash frames", "TOO_FEW_FRAMES"),
    ],
)
async def test_a_ktp_card_that_does_not_answer_the_flash_is_refused(client, kind, code) -> None:
    customer_id = f"cus_card_{kind.replace(' ', '_')}"
    signer = await client.device(customer_id)
    challenge = await client.challenge(customer_id, CARD)
    card = cv2.imread(str(ktp_path("ktp_captured.jpg")))
    colours = sequence(challenge)
    frames = {
        "screen": lambda: screen_flash_frames(card, colours),
        "another order": lambda: flash_frames(card, colours[1:] + colours[:1]),
        "no flash frames": lambda: [],
    }[kind]()
    reply = await client.check(card_request(signer, challenge, frames, customer_id))
    assert not reply.live
    assert [r.code for r in reply.reasons] == [code]
    assert reply.decision_basis == "card-flash"


def test_production_refuses_to_accept_cards_without_the_flash(tmp_path: Path) -> None:
    environ = {
        "LIVENESS_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        "LIVENESS_ENVIRONMENT": "production",
        "LIVENESS_DATA_REGION": "id-jkt-1",
    }
    assert load_settings(LivenessSettings, "LIVENESS", environ).card_flash_required
    with pytest.raises(SettingsError, match="LIVENESS_CARD_FLASH_REQUIRED: production judges"):
        load_settings(
            LivenessSettings, "LIVENESS", {**environ, "LIVENESS_CARD_FLASH_REQUIRED": "false"}
        )


def test_production_refuses_to_start_without_pad(tmp_path: Path) -> None:
    environ = {
        "LIVENESS_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        "LIVENESS_ENVIRONMENT": "production",
        "LIVENESS_DATA_REGION": "id-jkt-1",
    }
    # PAD is on by default, from the packaged weights: production starts.
    assert load_settings(LivenessSettings, "LIVENESS", environ).pad_enabled
    with pytest.raises(SettingsError, match="LIVENESS_PAD_ENABLED: production needs presentation"):
        load_settings(LivenessSettings, "LIVENESS", {**environ, "LIVENESS_PAD_ENABLED": "false"})
    with pytest.raises(SettingsError, match="LIVENESS_PAD_MODELS: name at least one PAD model"):
        load_settings(LivenessSettings, "LIVENESS", {**environ, "LIVENESS_PAD_MODELS": ""})


async def test_health_detail_names_the_pad_models(liveness_server) -> None:
    ready, detail = await liveness_server.core.ready()
    assert ready and detail.startswith("pad+challenge: minifasnet-v2@")
    async with channel(liveness_server) as ch:
        reply = await health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service="")
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
