"""Challenge and nonce single use on both databases, without models: expiry on a
controlled clock, and concurrent captures racing for one challenge; the
device limit, and listing and revoking a customer's devices."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from identity_capture.sdk import SdkSigner, SignedBundle
from identity_runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from identity_store.db import Database
from services.liveness.checks import ChallengePolicy, Liveness, LivenessRequest
from services.liveness.devices import forget_customer_devices, list_devices, revoke_device
from services.liveness.models import UsedNonce
from tests.support.liveness import Clock, frames_for

ORG = "org_store"


@pytest.fixture
def liveness(database_url: str):
    database = Database(database_url)
    clock = Clock()
    yield (
        Liveness(database=database, pad=None, policy=ChallengePolicy(ttl_seconds=60), clock=clock),
        clock,
    )
    database.dispose()


async def capture(
    service: Liveness, clock: Clock, signer: SdkSigner, customer: str, nonce: str | None = None
):
    challenge = await service.issue_challenge(ORG, customer, "step_up")
    signed = signer.sign_bundle(
        challenge_id=challenge.challenge_id, frames=[b"frame"], nonce=nonce, captured_at=clock.now
    )
    request = LivenessRequest(
        customer_id=customer,
        purpose="step_up",
        challenge_id=challenge.challenge_id,
        device_id=signed.device_id,
        nonce=signed.nonce,
        bundle_sha256=signed.bundle_sha256,
        signature=signed.signature,
        captured_at=signed.captured_at,
        computed_bundle_sha256=signed.bundle_sha256,
        pad_crops={},
        frames=frames_for(challenge.sequence, challenge.flash_duration_ms),
    )
    return challenge, request


def signed_anew(request: LivenessRequest, signed: SignedBundle) -> LivenessRequest:
    """`request` for another signed bundle (another nonce, digest or device)."""
    return LivenessRequest(
        **{
            **request.__dict__,
            "device_id": signed.device_id,
            "nonce": signed.nonce,
            "bundle_sha256": signed.bundle_sha256,
            "computed_bundle_sha256": signed.bundle_sha256,
            "signature": signed.signature,
        }
    )


async def register(service: Liveness, customer: str) -> SdkSigner:
    signer = SdkSigner()
    await service.register_device(
        ORG, signer.device_id, customer, signer.algorithm, signer.public_key_der(), "ios"
    )
    return signer


async def test_an_expired_challenge_is_refused_and_stays_unused(liveness) -> None:
    service, clock = liveness
    signer = await register(service, "cus_1")
    _, request = await capture(service, clock, signer, "cus_1")
    clock.now += timedelta(seconds=61)
    with pytest.raises(FailedPrecondition) as caught:
        await service.check_liveness(ORG, request)
    assert caught.value.reason == "CHALLENGE_EXPIRED"
    # Refused before any write: the nonce is still free for a new challenge.
    _, fresh = await capture(service, clock, signer, "cus_1", nonce=request.nonce)
    decision = await service.check_liveness(ORG, fresh)
    assert decision.live and decision.decision_basis == "challenge-only"


async def test_concurrent_captures_on_one_challenge_pass_once(liveness) -> None:
    service, clock = liveness
    signer = await register(service, "cus_2")
    challenge, first = await capture(service, clock, signer, "cus_2")
    signed = signer.sign_bundle(
        challenge_id=challenge.challenge_id, frames=[b"other"], captured_at=clock.now
    )
    second = signed_anew(first, signed)
    results = await asyncio.gather(
        service.check_liveness(ORG, first),
        service.check_liveness(ORG, second),
        return_exceptions=True,
    )
    passed = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(passed) == 1 and len(refused) == 1
    assert (
        isinstance(refused[0], FailedPrecondition) and refused[0].reason == "CHALLENGE_ALREADY_USED"
    )


async def test_a_nonce_is_single_use_across_challenges(liveness) -> None:
    service, clock = liveness
    signer = await register(service, "cus_3")
    _, first = await capture(service, clock, signer, "cus_3", nonce="n-1")
    await service.check_liveness(ORG, first)
    _, reused = await capture(service, clock, signer, "cus_3", nonce="n-1")
    with pytest.raises(AlreadyExists) as caught:
        await service.check_liveness(ORG, reused)
    assert caught.value.reason == "NONCE_REPLAYED"
    assert "another bundle" in caught.value.message


async def test_a_nonce_is_free_again_once_its_retention_has_passed(liveness) -> None:
    """Past the nonce's retention (24 h) its row is replaced, not duplicated;
    within it the nonce is refused."""
    service, clock = liveness
    signer = await register(service, "cus_5")
    _, first = await capture(service, clock, signer, "cus_5", nonce="n-5")
    await service.check_liveness(ORG, first)
    clock.now += timedelta(hours=23)
    _, early = await capture(service, clock, signer, "cus_5", nonce="n-5")
    with pytest.raises(AlreadyExists) as caught:
        await service.check_liveness(ORG, early)
    assert caught.value.reason == "NONCE_REPLAYED"
    clock.now += timedelta(hours=2)
    _, later = await capture(service, clock, signer, "cus_5", nonce="n-5")
    assert (await service.check_liveness(ORG, later)).live
    # Spent again: refused again, for another 24 h.
    _, again = await capture(service, clock, signer, "cus_5", nonce="n-5")
    with pytest.raises(AlreadyExists):
        await service.check_liveness(ORG, again)


async def test_a_capture_is_checked_and_consumed_in_five_statements(liveness) -> None:
    """Device, nonce, challenge, the challenge spent, the nonce recorded: one
    transaction (issue 15; expired nonces are the retention sweep's)."""
    service, clock = liveness
    signer = await register(service, "cus_7")
    _, request = await capture(service, clock, signer, "cus_7")
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if not sql.startswith("BEGIN"):
            statements.append(sql.split("(")[0][:40])

    engine = service.database.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert (await service.check_liveness(ORG, request)).live
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(statements) == 5, statements


async def test_two_concurrent_reuses_of_an_expired_nonce_pass_once(liveness, monkeypatch) -> None:
    service, clock = liveness
    signer = await register(service, "cus_6")
    _, first = await capture(service, clock, signer, "cus_6", nonce="n-6")
    await service.check_liveness(ORG, first)
    clock.now += timedelta(hours=25)
    requests = [(await capture(service, clock, signer, "cus_6", nonce="n-6"))[1] for _ in "ab"]
    if service.database.dialect == "postgresql":
        # Both calls read the expired row before either consumes (SQLite's
        # writers queue for the whole transaction: no such interleaving there).
        both_checked = threading.Barrier(2, timeout=10)
        check = service._check_protocol

        def check_then_wait(*args: Any) -> Any:
            checked = check(*args)
            both_checked.wait()
            return checked

        monkeypatch.setattr(service, "_check_protocol", check_then_wait)
    results = await asyncio.gather(
        *(service.check_liveness(ORG, r) for r in requests), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 1, results
    assert isinstance(refused[0], AlreadyExists) and refused[0].reason == "NONCE_REPLAYED"


async def test_only_kyc_tiers_resume_of_the_very_bundle_is_decided_again(liveness) -> None:
    """A capture kyc-tier could not record (its caller's deadline, a crash)
    after this service spent the challenge and the nonce: the same bundle,
    resumed, is decided again and consumes nothing; without `resume`, or
    with another bundle, it stays a replay."""
    service, clock = liveness
    signer = await register(service, "cus_4")
    challenge, first = await capture(service, clock, signer, "cus_4", nonce="n-resume")
    decided = await service.check_liveness(ORG, first)
    with pytest.raises(AlreadyExists) as replayed:
        await service.check_liveness(ORG, first)
    assert replayed.value.reason == "NONCE_REPLAYED"

    resumed = LivenessRequest(**{**first.__dict__, "resume": True})
    assert await service.check_liveness(ORG, resumed) == decided
    assert await service.check_liveness(ORG, resumed) == decided  # idempotent

    # Another bundle under the nonce (same challenge): still a replay.
    other = signer.sign_bundle(
        challenge_id=challenge.challenge_id,
        frames=[b"other"],
        nonce="n-resume",
        captured_at=clock.now,
    )
    forged = LivenessRequest(
        **{
            **resumed.__dict__,
            "bundle_sha256": other.bundle_sha256,
            "computed_bundle_sha256": other.bundle_sha256,
            "signature": other.signature,
        }
    )
    with pytest.raises(AlreadyExists) as refused:
        await service.check_liveness(ORG, forged)
    assert "another bundle" in refused.value.message
    # The same nonce and bundle on another challenge cannot be resumed either:
    # the bundle's digest names its challenge, so this is another bundle.
    _, elsewhere = await capture(service, clock, signer, "cus_4", nonce="n-resume")
    with pytest.raises(AlreadyExists):
        await service.check_liveness(ORG, LivenessRequest(**{**elsewhere.__dict__, "resume": True}))


async def test_new_devices_are_limited_per_day_and_no_one_is_locked_out_for_good(liveness) -> None:
    """The re-probe's R5-4: a cap on every device, with no route to remove
    one, locked out for good a customer who reached it (ten cleared browsers,
    or a stolen SDK token). The limit is on new devices in 24 hours: the next
    is refused naming when to retry, and a day after the oldest it is taken."""
    service, clock = liveness
    service.max_new_devices_per_day = 3
    for _ in range(3):
        await register(service, "cus_devices")
        clock.now += timedelta(hours=1)
    with pytest.raises(FailedPrecondition) as refused:
        await register(service, "cus_devices")
    assert refused.value.reason == "DEVICE_LIMIT_REACHED"
    # The oldest of the three was registered 3 hours ago: a day after it.
    assert refused.value.metadata == {"max_devices": "3", "retry_after_seconds": str(21 * 3600)}
    clock.now += timedelta(hours=21, seconds=1)
    await register(service, "cus_devices")


async def revoke(service: Liveness, clock: Clock, customer: str, device_id: str, org: str = ORG):
    return await revoke_device(service.database, org, customer, device_id, clock.now)


async def test_a_revoked_devices_signatures_are_refused_and_consume_nothing(liveness) -> None:
    """A lost phone's key: whatever it signs from then on is refused, by the
    pre-check and by the consuming check, for every purpose."""
    service, clock = liveness
    lost, kept = await register(service, "cus_lost"), await register(service, "cus_lost")
    challenge, request = await capture(service, clock, lost, "cus_lost")
    _, revoked = await revoke(service, clock, "cus_lost", lost.device_id)
    assert revoked
    for check in (service.check_attestation, service.check_liveness):
        with pytest.raises(PermissionDenied) as refused:
            await check(ORG, request)
        assert refused.value.reason == "DEVICE_REVOKED"
        assert refused.value.metadata == {"device_id": lost.device_id}
    card = LivenessRequest(**{**request.__dict__, "purpose": "ktp_capture"})
    with pytest.raises(PermissionDenied, match="revoked"):
        await service.check_attestation(ORG, card)
    # Nothing consumed: the customer's other device answers the same challenge.
    signed = kept.sign_bundle(
        challenge_id=challenge.challenge_id, frames=[b"frame"], captured_at=clock.now
    )
    assert (await service.check_liveness(ORG, signed_anew(request, signed))).live


async def test_devices_are_listed_newest_first_and_revoking_is_idempotent(liveness) -> None:
    service, clock = liveness
    first = await register(service, "cus_list")
    clock.now += timedelta(minutes=5)
    second = await register(service, "cus_list")
    revoked_at = clock.now + timedelta(minutes=1)
    clock.now = revoked_at
    device, revoked = await revoke(service, clock, "cus_list", first.device_id)
    assert revoked and device.revoked_at == revoked_at
    clock.now += timedelta(hours=1)
    again, revoked = await revoke(service, clock, "cus_list", first.device_id)
    assert not revoked and again == device  # answered unchanged

    listed = await list_devices(service.database, ORG, "cus_list")
    assert [d.device_id for d in listed] == [second.device_id, first.device_id]
    assert [d.revoked_at for d in listed] == [None, revoked_at]
    assert listed[1].key_fingerprint == device.key_fingerprint and len(device.key_fingerprint) == 64
    assert await list_devices(service.database, "org_other", "cus_list") == []
    assert await list_devices(service.database, ORG, "cus_nobody") == []


async def test_a_revoked_device_id_is_not_registered_again(liveness) -> None:
    """A new installation has a new id; the revoked one stays dead, with its
    key or another (a thief re-registering it with a key of their own)."""
    service, clock = liveness
    signer = await register(service, "cus_again")
    await revoke(service, clock, "cus_again", signer.device_id)
    thief = SdkSigner(device_id=signer.device_id)
    for key in (signer.public_key_der(), thief.public_key_der()):
        with pytest.raises(PermissionDenied) as refused:
            await service.register_device(
                ORG, signer.device_id, "cus_again", signer.algorithm, key, "ios"
            )
        assert refused.value.reason == "DEVICE_REVOKED"
    # Another customer's revoked id is still only "taken", as before.
    with pytest.raises(AlreadyExists):
        await service.register_device(
            ORG, signer.device_id, "cus_else", signer.algorithm, thief.public_key_der(), "ios"
        )
    [listed] = await list_devices(service.database, ORG, "cus_again")
    assert listed.revoked_at is not None


async def test_only_the_customers_own_device_is_revoked(liveness) -> None:
    """Another customer's device, another organisation's, an unknown id: not
    found, and nothing changed; a malformed id: INVALID_FIELD."""
    service, clock = liveness
    signer = await register(service, "cus_owner")
    for org, customer, device_id in [
        (ORG, "cus_intruder", signer.device_id),
        ("org_other", "cus_owner", signer.device_id),
        (ORG, "cus_owner", "dev_unknown"),
    ]:
        with pytest.raises(NotFound) as refused:
            await revoke(service, clock, customer, device_id, org)
        assert refused.value.reason == "DEVICE_NOT_FOUND"
    for customer, device_id, field in [
        ("cus_owner", "", "device_id"),
        ("cus_owner", "d" * 129, "device_id"),
        ("", signer.device_id, "customer_id"),
    ]:
        with pytest.raises(InvalidArgument) as invalid:
            await revoke(service, clock, customer, device_id)
        assert invalid.value.reason == "INVALID_FIELD"
        assert invalid.value.metadata["field"] == field
    [listed] = await list_devices(service.database, ORG, "cus_owner")
    assert listed.revoked_at is None
    _, request = await capture(service, clock, signer, "cus_owner")
    assert (await service.check_liveness(ORG, request)).live


async def test_forgetting_a_customers_devices_drops_their_nonces_bundle_digests(liveness) -> None:
    """kyc-tier's erasure step: the erased customer's accepted nonces stay (a
    replay is still refused) but lose the digest of the customer's bundle;
    another customer's keep theirs."""
    service, clock = liveness
    gone, kept = await register(service, "cus_gone"), await register(service, "cus_kept")
    for signer, customer in ((gone, "cus_gone"), (kept, "cus_kept")):
        _, request = await capture(service, clock, signer, customer)
        await service.check_liveness(ORG, request)

    forgotten = await forget_customer_devices(service.database, ORG, "cus_gone")

    assert forgotten.devices == 1

    def digests(session: Any) -> dict[str, str]:
        rows = session.execute(sa.select(UsedNonce.device_id, UsedNonce.bundle_sha256)).all()
        return dict(rows)

    stored = await service.database.run(digests)
    assert stored[gone.device_id] == ""
    assert len(stored[kept.device_id]) == 64
