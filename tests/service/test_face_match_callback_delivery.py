"""Face Match callbacks (probe 3, findings 6 and 7), on SQLite and PostgreSQL:

- a failing callback is retried on the webhooks' schedule for the retry
  horizon (FACE_MATCH_CALLBACK_RETRY_HOURS, 72 h), not 8 attempts in ~4 min,
  then given up, shown FAILED and audited (face_match.callback_failed);
- a partner can redeliver a finished submission's callback (idempotent,
  audited), refused precisely otherwise;
- the header's event id is the body's eventId;
- an organisation's callback secret is random, shown once, sealed, and
  rotatable with an overlap during which both secrets sign; an organisation
  that used the derived secret keeps it until it rotates.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from identity_cli.main import main as identity_main
from identity_runtime.clients import ClientFactory, ClientOptions
from identity_store.types import utcnow
from services.audit import models as audit_models
from services.audit.service import SPEC as AUDIT
from services.face_match.audit import AuditRelay
from services.face_match.callbacks import callback_secret
from services.face_match.models import (
    AuditOutbox,
    Callback,
    CallbackSecret,
    Submission,
    Transition,
)
from services.face_match.service import SPEC as FACE_MATCH
from services.face_match.worker import CallbackRelay
from tests.service.test_audit import env as audit_env
from tests.service.test_face_match import SAME_PERSON_REFERENCE, SELFIE, Partner, S, refusal
from tests.support import start_service
from tests.support.face_match import CALLBACK_KEY, CallbackReceiver, env
from tests.support.meshauth import caller_metadata, signer

ORG = "org_fm_a"


@pytest.fixture
async def service(database_url: str, tmp_path: Path):
    server = await start_service(
        FACE_MATCH,
        env(database_url, tmp_path / "bucket", FACE_MATCH_CALLBACK_ALLOW_LOOPBACK="true"),
    )
    # Stop the service's own loops: the relays under test are the only ones.
    server.core._stop.set()
    await asyncio.gather(*server.core._tasks, return_exceptions=True)
    yield server
    await server.stop(0)


@pytest.fixture
async def receiver():
    receiver = await CallbackReceiver().start()
    yield receiver
    await receiver.stop()


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def relay(service, clock: Clock | None = None, **options) -> CallbackRelay:
    return CallbackRelay(
        service.core.database,
        signing_key=CALLBACK_KEY,
        clock=clock or utcnow,
        allow_loopback=True,
        **options,
    )


async def finished(
    service, partner: Partner, correlation_id: str, callback_url: str = ""
) -> S.CreateSubmissionResponse:
    """A submission created, uploaded, confirmed and FAILED by a worker (its
    callback, if it has a URL, queued)."""
    created = await partner.create(correlation_id, callback_url=callback_url)
    await partner.upload_both(created, SELFIE, SAME_PERSON_REFERENCE)
    await partner.stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id=correlation_id))
    lease = await service.core.queue.lease("test-worker")
    assert lease is not None and lease.submission_id == created.submission_id
    assert await service.core.queue.complete(lease, None, "IMAGE_MISSING")
    return created


def callback_row(service, submission_id: str) -> Callback:
    with service.core.database.transaction() as session:
        row = session.scalars(select_callback(submission_id)).one()
        session.expunge(row)
    return row


def select_callback(submission_id: str) -> sa.Select[tuple[Callback]]:
    return sa.select(Callback).where(Callback.submission_id == submission_id)


def records(service, prefix: str) -> list[Transition]:
    with service.core.database.transaction() as session:
        rows = session.scalars(
            sa.select(Transition)
            .where(Transition.detail.startswith(prefix))
            .order_by(Transition.sequence)
        ).all()
        session.expunge_all()
    return list(rows)


async def details(partner: Partner, correlation_id: str) -> S.SubmissionDetails:
    answer = await partner.stub.GetSubmission(S.GetSubmissionRequest(correlation_id=correlation_id))
    return answer.submission


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def audited(service, database_url: str) -> list[audit_models.AuditEntry]:
    """Relay every pending transition row to a real audit service; the chain."""
    audit = await start_service(AUDIT, audit_env(database_url))
    clients = ClientFactory(
        {"audit": audit.address},
        ClientOptions(default_timeout_seconds=30),
        signer=signer("face-match"),
    )
    try:
        await AuditRelay(service.core.database, clients, utcnow).flush()
    finally:
        await clients.close()
        await audit.stop(0)
    with service.core.database.transaction() as session:
        rows = session.scalars(
            sa.select(audit_models.AuditEntry).order_by(audit_models.AuditEntry.sequence)
        ).all()
        session.expunge_all()
    return list(rows)


# -- finding 6: the retry horizon, the give-up, redelivery ---------------------


async def test_a_failing_callback_is_retried_for_72_hours_then_given_up_shown_and_audited(
    service, receiver, database_url: str
) -> None:
    partner = Partner(service)
    receiver.status = 500
    try:
        created = await finished(service, partner, "retry-1", receiver.url)
        queued = callback_row(service, created.submission_id).queued_at
        assert queued is not None
        clock = Clock(utcnow())
        # The longest waits (the upper end of each jittered draw).
        retrying = relay(service, clock, rand=lambda: 1.0)
        attempts: list[datetime] = []
        for _ in range(100):
            assert await retrying.flush() == 0
            attempts.append(clock.now)
            row = callback_row(service, created.submission_id)
            if row.state != "pending":
                break
            clock.now = row.next_attempt_at
        # What 8 attempts used to be: about 4 minutes, then dead for good.
        after_8 = attempts[7] - attempts[0]
        assert after_8 < timedelta(hours=2)
        assert row.state == "dead" and row.attempt_count == len(attempts) > 8
        assert len(receiver.received) == len(attempts)
        assert (
            attempts[-1] - queued
            <= timedelta(hours=72)
            < attempts[-1] - queued + (timedelta(hours=6))
        )
        gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
        assert gaps[0] == timedelta(seconds=30) and gaps[1] == timedelta(seconds=60)
        assert max(gaps) == timedelta(hours=6)
        # Given up: no attempt is made any more.
        clock.now += timedelta(days=30)
        assert await retrying.flush() == 0
        assert len(receiver.received) == len(attempts)

        shown = await details(partner, "retry-1")
        assert shown.callback.state == S.CALLBACK_STATE_FAILED
        assert shown.callback.attempts == len(attempts)
        assert shown.callback.last_error == "http_status"
        assert not shown.callback.HasField("next_attempt_at")
        # The audit record is not a lifecycle transition.
        assert [t.state for t in shown.transitions][-1] == S.SUBMISSION_STATE_FAILED
        assert len(shown.transitions) == 5
        [record] = records(service, "callback failed")
        assert record.submission_id == created.submission_id
        assert record.detail == f"callback failed: http_status after {len(attempts)} attempts"
    finally:
        await partner.close()
    chain = [e for e in await audited(service, database_url) if "callback" in e.action]
    [entry] = chain
    assert (entry.action, entry.outcome) == ("face_match.callback_failed", "failed")
    assert entry.subject == f"face_match_submission:{created.submission_id}"
    assert entry.tenant_id == ORG and entry.actor == "service:face-match"


async def test_the_retry_horizon_is_a_setting(database_url: str, tmp_path: Path) -> None:
    server = await start_service(
        FACE_MATCH, env(database_url, tmp_path / "bucket", FACE_MATCH_CALLBACK_RETRY_HOURS="2")
    )
    try:
        assert server.core.relay.horizon == timedelta(hours=2)
    finally:
        await server.stop(0)


async def test_a_shorter_horizon_gives_up_sooner(service, receiver) -> None:
    partner = Partner(service)
    receiver.status = 500
    try:
        created = await finished(service, partner, "retry-2", receiver.url)
        clock = Clock(utcnow())
        short = relay(service, clock, rand=lambda: 1.0, retry_hours=1)
        for _ in range(100):
            await short.flush()
            row = callback_row(service, created.submission_id)
            if row.state != "pending":
                break
            clock.now = row.next_attempt_at
        assert row.state == "dead"
        # 30 s + 60 s + ... + 960 s = 31 min; the next wait (32 min) passes 1 h.
        assert row.attempt_count == 7
    finally:
        await partner.close()


async def test_a_given_up_callback_is_redelivered_once_then_again_after_delivery(
    service, receiver, database_url: str
) -> None:
    partner = Partner(service)
    receiver.status = 500
    try:
        created = await finished(service, partner, "redeliver-1", receiver.url)
        receiver.secret = created.callback_signing_secret
        clock = Clock(utcnow())
        retrying = relay(service, clock, rand=lambda: 1.0, retry_hours=1)
        for _ in range(100):
            await retrying.flush()
            row = callback_row(service, created.submission_id)
            if row.state != "pending":
                break
            clock.now = row.next_attempt_at
        assert row.state == "dead"
        failed_attempts = len(receiver.received)

        request = S.RedeliverCallbackRequest(correlation_id="redeliver-1")
        answer = await partner.stub.RedeliverCallback(request)
        assert answer.callback.state == S.CALLBACK_STATE_PENDING
        assert answer.callback.attempts == 0 and not answer.callback.last_error
        assert answer.callback.HasField("next_attempt_at")
        # Idempotent: asking again while it is pending changes nothing.
        again = await partner.stub.RedeliverCallback(request)
        assert again.callback == answer.callback
        assert len(records(service, "callback redelivered")) == 1

        receiver.status = 200
        assert await relay(service).flush() == 1
        shown = await details(partner, "redeliver-1")
        assert shown.callback.state == S.CALLBACK_STATE_DELIVERED
        assert shown.callback.attempts == 1
        # The same event, bytes and id as the attempts that failed.
        assert len(receiver.received) == failed_attempts + 1
        assert receiver.bodies[-1] == receiver.bodies[0]
        assert receiver.headers[-1]["x-identity-event-id"] == receiver.received[0][0]["eventId"]
        assert receiver.received[-1][1]  # signed with the organisation's secret

        # A delivered callback the receiver lost: queued again, delivered again.
        answer = await partner.stub.RedeliverCallback(request)
        assert answer.callback.state == S.CALLBACK_STATE_PENDING
        assert await relay(service).flush() == 1
        assert len(receiver.received) == failed_attempts + 2
        assert (await details(partner, "redeliver-1")).callback.state == (
            S.CALLBACK_STATE_DELIVERED
        )
        redelivered = records(service, "callback redelivered")
        assert len(redelivered) == 2
        assert {r.actor for r in redelivered} == {"api_key:key_test"}
        assert len((await details(partner, "redeliver-1")).transitions) == 5
    finally:
        await partner.close()
    chain = [e.action for e in await audited(service, database_url) if "callback" in e.action]
    assert chain == [
        "face_match.callback_failed",
        "face_match.callback_redelivered",
        "face_match.callback_redelivered",
    ]


async def test_redelivery_is_refused_precisely(service, receiver) -> None:
    partner = Partner(service)
    other = Partner(service, "org_fm_other")
    try:
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await partner.stub.RedeliverCallback(
                S.RedeliverCallbackRequest(correlation_id="nobody")
            )
        assert refusal(unknown) == ("NOT_FOUND", "SUBMISSION_NOT_FOUND")

        await partner.create("waiting", callback_url=receiver.url)
        with pytest.raises(grpc.aio.AioRpcError) as waiting:
            await partner.stub.RedeliverCallback(
                S.RedeliverCallbackRequest(correlation_id="waiting")
            )
        assert refusal(waiting) == ("ABORTED", "SUBMISSION_NOT_FINISHED")

        await finished(service, partner, "no-url")
        with pytest.raises(grpc.aio.AioRpcError) as no_url:
            await partner.stub.RedeliverCallback(
                S.RedeliverCallbackRequest(correlation_id="no-url")
            )
        assert refusal(no_url) == ("FAILED_PRECONDITION", "CALLBACK_NOT_CONFIGURED")

        await finished(service, partner, "theirs", receiver.url)
        with pytest.raises(grpc.aio.AioRpcError) as theirs:
            await other.stub.RedeliverCallback(S.RedeliverCallbackRequest(correlation_id="theirs"))
        assert refusal(theirs) == ("NOT_FOUND", "SUBMISSION_NOT_FOUND")
        # A pending callback is left as it is (nothing audited).
        answer = await partner.stub.RedeliverCallback(
            S.RedeliverCallbackRequest(correlation_id="theirs")
        )
        assert answer.callback.state == S.CALLBACK_STATE_PENDING
        assert records(service, "callback redelivered") == []
    finally:
        await partner.close()
        await other.close()


# -- finding 7: one event id, rotatable secrets ----------------------------------


async def test_the_header_event_id_is_the_body_event_id(service, receiver) -> None:
    partner = Partner(service)
    try:
        created = await finished(service, partner, "event-id", receiver.url)
        receiver.secret = created.callback_signing_secret
        assert await relay(service).flush() == 1
    finally:
        await partner.close()
    [(event, verified)] = receiver.received
    assert verified
    assert event["eventId"] == f"evt_{created.submission_id}"
    assert receiver.headers[0]["x-identity-event-id"] == event["eventId"]


async def test_a_new_organisation_gets_a_random_secret_once_and_it_is_stored_sealed(
    service, receiver
) -> None:
    partner = Partner(service)
    other = Partner(service, "org_fm_other")
    try:
        first = await partner.create("secret-1", callback_url=receiver.url)
        secret = first.callback_signing_secret
        assert len(secret) == 64 and secret != callback_secret(CALLBACK_KEY, ORG)
        again = await partner.create("secret-1", callback_url=receiver.url)
        assert again.callback_signing_secret == ""
        assert (await partner.create("secret-2")).callback_signing_secret == ""
        theirs = (await other.create("secret-1")).callback_signing_secret
        assert len(theirs) == 64 and theirs != secret
        await finished(service, partner, "secret-3", receiver.url)
        assert await relay(service).flush() == 1
    finally:
        await partner.close()
        await other.close()
    body = receiver.bodies[0]
    assert receiver.headers[0]["x-identity-signature"] == sign(secret, body)
    assert receiver.headers[0]["x-quantum-signature"] == sign(secret, body)
    with service.core.database.transaction() as session:
        stored = session.get(CallbackSecret, ORG)
        assert stored is not None and stored.secret_sealed is not None
        assert secret.encode() not in stored.secret_sealed
        assert bytes.fromhex(secret) not in stored.secret_sealed


async def _legacy(service, org_id: str) -> None:
    """What migration fm0006 writes for an organisation that had submissions."""
    with service.core.database.transaction() as session:
        session.add(CallbackSecret(org_id=org_id, secret_sealed=None, created_at=utcnow()))


def internal_metadata(org_id: str) -> list[tuple[str, str]]:
    return caller_metadata(org_id, scopes=("public", "internal"), issuer="gateway")


async def test_rotation_keeps_the_derived_secret_signing_during_the_overlap_only(
    service, receiver, database_url: str
) -> None:
    partner = Partner(service)
    derived = callback_secret(CALLBACK_KEY, ORG)
    await _legacy(service, ORG)
    try:
        # An existing partner: its derived secret, on every create, until it rotates.
        assert (await partner.create("legacy-1")).callback_signing_secret == derived
        assert (await partner.create("legacy-2")).callback_signing_secret == derived
        await finished(service, partner, "legacy-3", receiver.url)
        assert await relay(service).flush() == 1
        assert receiver.headers[0]["x-identity-signature"] == sign(derived, receiver.bodies[0])

        rotated = await partner.stub.RotateCallbackSecret(
            S.RotateCallbackSecretRequest(overlap_seconds=3600),
            metadata=internal_metadata(ORG),
        )
        new = rotated.callback_signing_secret
        assert len(new) == 64 and new != derived
        expires = rotated.previous_secret_expires_at.ToDatetime()
        assert timedelta(minutes=59) < expires - utcnow().replace(tzinfo=None) <= timedelta(hours=1)
        # Never shown by create again.
        assert (await partner.create("legacy-1")).callback_signing_secret == ""

        # During the overlap both sign: "sha256=<new>, sha256=<old>".
        redeliver = S.RedeliverCallbackRequest(correlation_id="legacy-3")
        await partner.stub.RedeliverCallback(redeliver)
        assert await relay(service).flush() == 1
        body = receiver.bodies[-1]
        both = f"{sign(new, body)}, {sign(derived, body)}"
        assert receiver.headers[-1]["x-identity-signature"] == both
        assert receiver.headers[-1]["x-quantum-signature"] == both

        # After it, the new one alone.
        await partner.stub.RedeliverCallback(redeliver)
        later = Clock(utcnow() + timedelta(hours=1, seconds=1))
        assert await relay(service, later).flush() == 1
        assert receiver.headers[-1]["x-identity-signature"] == sign(new, receiver.bodies[-1])

        # A second rotation keeps the first rotated secret for its overlap (default 1 day).
        second = await partner.stub.RotateCallbackSecret(
            S.RotateCallbackSecretRequest(), metadata=internal_metadata(ORG)
        )
        gap = second.previous_secret_expires_at.ToDatetime() - utcnow().replace(tzinfo=None)
        assert timedelta(hours=23) < gap <= timedelta(days=1)
        await partner.stub.RedeliverCallback(redeliver)
        assert await relay(service).flush() == 1
        body = receiver.bodies[-1]
        newest = second.callback_signing_secret
        assert receiver.headers[-1]["x-identity-signature"] == (
            f"{sign(newest, body)}, {sign(new, body)}"
        )
    finally:
        await partner.close()
    # A rotation names no submission: its record is a row of fm_audit_outbox.
    with service.core.database.transaction() as session:
        rotations = session.scalars(
            sa.select(AuditOutbox.details)
            .where(AuditOutbox.action == "face_match.callback_secret_rotated")
            .order_by(AuditOutbox.id)
        ).all()
    assert rotations == [{"overlap_seconds": "3600"}, {"overlap_seconds": "86400"}]
    chain = [e for e in await audited(service, database_url) if "secret" in e.action]
    assert [(e.action, e.subject, e.outcome) for e in chain] == [
        ("face_match.callback_secret_rotated", f"face_match_callback_secret:{ORG}", "success")
    ] * 2
    assert all(e.actor == "api_key:key_test" for e in chain)


async def test_rotation_is_refused_to_public_callers_and_for_bad_overlaps(service) -> None:
    partner = Partner(service)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as public:
            await partner.stub.RotateCallbackSecret(
                S.RotateCallbackSecretRequest(),
                metadata=caller_metadata(ORG, scopes=("public",), issuer="gateway"),
            )
        assert public.value.code() == grpc.StatusCode.PERMISSION_DENIED
        for overlap in (-1, 604_801):
            with pytest.raises(grpc.aio.AioRpcError) as bad:
                await partner.stub.RotateCallbackSecret(
                    S.RotateCallbackSecretRequest(overlap_seconds=overlap),
                    metadata=internal_metadata(ORG),
                )
            assert refusal(bad) == ("INVALID_ARGUMENT", "INVALID_FIELD")
        assert records(service, "callback secret rotated") == []
        with service.core.database.transaction() as session:
            assert session.get(CallbackSecret, ORG) is None
        # The longest overlap is allowed; the organisation had no secret yet.
        rotated = await partner.stub.RotateCallbackSecret(
            S.RotateCallbackSecretRequest(overlap_seconds=604_800),
            metadata=internal_metadata(ORG),
        )
        assert len(rotated.callback_signing_secret) == 64
        assert (await partner.create("after-rotation")).callback_signing_secret == ""
    finally:
        await partner.close()


def rotation_rows(service) -> list[tuple[str, str, str, dict]]:
    with service.core.database.transaction() as session:
        return [
            tuple(row)
            for row in session.execute(
                sa.select(
                    AuditOutbox.org_id, AuditOutbox.subject, AuditOutbox.actor, AuditOutbox.details
                )
                .where(AuditOutbox.action == "face_match.callback_secret_rotated")
                .order_by(AuditOutbox.id)
            )
        ]


async def test_the_cli_rotates_the_callback_secret_as_the_route_does(
    service, receiver, database_url: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    """`identity face-match rotate-callback-secret`: the new secret printed
    once, both signing during the overlap, audited with the CLI as actor;
    refused in one line (exit 2), nothing written, for an unknown
    organisation, a bad overlap or no signing key."""
    monkeypatch.delenv("FACE_MATCH_CALLBACK_SIGNING_KEY", raising=False)

    def cli(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()  # the service's own log lines so far
        status = identity_main(
            ["face-match", "rotate-callback-secret", "--database-url", database_url]
            + ["--data-dir", str(tmp_path / "no-data-dir"), *args]
        )
        out, err = capsys.readouterr()
        return status, out, err

    def refused(*args: str) -> str:
        status, out, err = cli(*args)
        assert (status, out) == (2, ""), err
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        return err

    assert (
        identity_main(
            ["orgs", "create", "--name", "Acme", "--id", ORG] + ["--database-url", database_url]
        )
        == 0
    )
    capsys.readouterr()
    partner = Partner(service)
    try:
        shown = (await partner.create("cli-1")).callback_signing_secret
        await finished(service, partner, "cli-2", receiver.url)
        key_file = tmp_path / "callback-signing-key"
        key_file.write_text(CALLBACK_KEY + "\n")
        key = ("--signing-key-file", str(key_file))
        assert "no organisation 'org_nope'" in refused("--org", "org_nope", *key)
        for overlap in ("-1", "604801"):
            assert "--overlap-seconds: must be between 1 and 604800" in refused(
                "--org", ORG, "--overlap-seconds", overlap, *key
            )
        assert "no Face Match callback signing key: pass --signing-key-file" in refused(
            "--org", ORG
        )
        assert rotation_rows(service) == []
        with service.core.database.transaction() as session:
            assert session.get(CallbackSecret, "org_nope") is None

        status, out, err = cli("--org", ORG, "--overlap-seconds", "3600", *key)
        assert status == 0, err
        fields = dict(line.split("=", 1) for line in out.splitlines())
        new = fields["callback_signing_secret"]
        assert len(new) == 64 and new != shown and new not in err
        expires = datetime.fromisoformat(fields["previous_secret_expires_at"])
        assert timedelta(minutes=59) < expires - utcnow() <= timedelta(hours=1)
        # Never shown by create again; during the overlap both secrets sign.
        assert (await partner.create("cli-1")).callback_signing_secret == ""
        await partner.stub.RedeliverCallback(S.RedeliverCallbackRequest(correlation_id="cli-2"))
        assert await relay(service).flush() == 1
        body = receiver.bodies[-1]
        assert receiver.headers[-1]["x-identity-signature"] == (
            f"{sign(new, body)}, {sign(shown, body)}"
        )
    finally:
        await partner.close()
    assert rotation_rows(service) == [
        (
            ORG,
            f"face_match_callback_secret:{ORG}",
            "system:identity-cli",
            {"overlap_seconds": "3600"},
        )
    ]


# -- through the gateway: the routes, their scopes and statuses -------------------


async def test_the_routes_through_the_gateway(service, receiver, database_url: str) -> None:
    """An OAuth client's token (public scope): redeliver answers 200 / 404 /
    409 / 400; rotating needs the internal scope (403)."""
    from services.face_match.oauth import new_client
    from tests.support.gateway import assert_error, bearer, gateway_client, gateway_settings

    database = service.core.database
    view, client_secret = await database.run(
        lambda s: new_client(s, ORG, "backend", service.settings.oauth_client_pepper, utcnow())
    )
    partner = Partner(service)
    try:
        await finished(service, partner, "gw-done", receiver.url)
        assert await relay(service).flush() == 1
        await partner.create("gw-waiting")
        await finished(service, partner, "gw-no-url")
        async with gateway_client(gateway_settings({"face_match": service.address})) as gateway:
            issued = await gateway.post(
                "/api/oauth/token",
                json={
                    "grant_type": "client_credentials",
                    "client_id": view.client_id,
                    "client_secret": client_secret,
                },
            )
            headers = bearer(issued.json()["access_token"])
            path = "/api/face-match/submissions/{}/callback/redeliver"
            done = await gateway.post(path.format("gw-done"), json={}, headers=headers)
            assert done.status_code == 200, done.text
            assert done.json()["callback"]["state"] == "CALLBACK_STATE_PENDING"
            assert_error(
                await gateway.post(path.format("gw-unknown"), json={}, headers=headers),
                404,
                "SUBMISSION_NOT_FOUND",
            )
            assert_error(
                await gateway.post(path.format("gw-waiting"), json={}, headers=headers),
                409,
                "SUBMISSION_NOT_FINISHED",
            )
            assert_error(
                await gateway.post(path.format("gw-no-url"), json={}, headers=headers),
                400,
                "CALLBACK_NOT_CONFIGURED",
            )
            assert_error(
                await gateway.post(
                    "/api/face-match/callback-secret/rotate", json={}, headers=headers
                ),
                403,
                "SCOPE_INSUFFICIENT",
            )
    finally:
        await partner.close()
    with database.transaction() as session:
        submission = session.scalars(
            sa.select(Submission).where(Submission.correlation_id == "gw-done")
        ).one()
        assert session.scalars(select_callback(submission.submission_id)).one().state == "pending"


async def test_a_stored_url_the_client_cannot_send_fails_alone_and_holds_up_no_other(
    service, receiver
) -> None:
    """The re-probe (N1): a callback URL with a non-ASCII path (accepted before
    the ASCII rule) made the HTTP client raise; the relay's round ended there,
    so that callback and every one claimed after it, of any organisation,
    stayed pending for good and unaudited."""
    partner, other = Partner(service), Partner(service, "org_fm_other")
    try:
        bad = await finished(service, partner, "unsendable", receiver.url)
        await finished(service, other, "sendable", receiver.url)
    finally:
        await partner.close()
        await other.close()
    # As a release before the rule stored it.
    with service.core.database.transaction() as session:
        session.execute(
            sa.update(Callback)
            .where(Callback.submission_id == bad.submission_id)
            .values(url=receiver.url + "/caf\u00e9")
        )
    assert await relay(service).flush() == 1
    assert [json.loads(body)["correlationId"] for body in receiver.bodies] == ["sendable"]
    row = callback_row(service, bad.submission_id)
    assert (row.state, row.attempt_count, row.last_error) == ("pending", 1, "invalid_url")
    assert row.next_attempt_at > row.last_attempt_at
