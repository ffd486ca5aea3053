"""Face Match callbacks under the platform's egress policy (the same as
webhooks'): the real gRPC service refuses non-public callback URLs at
creation even in development settings, and the relay, on SQLite and
PostgreSQL, posts to a real local receiver only at an address it checked:
a name that now resolves to a forbidden address is never contacted and the
attempt is recorded as failed with its reason (black-box probe F2)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select

from identity_platform_api.face_match.v1 import submissions_pb2, submissions_pb2_grpc
from identity_runtime.addresses import IPAddress
from identity_runtime.status import error_info, status_from_rpc_error
from identity_store.db import Database
from identity_store.types import utcnow
from services.face_match.callbacks import callback_secret
from services.face_match.models import Callback
from services.face_match.service import SPEC as FACE_MATCH
from services.face_match.submissions.lifecycle import new_id
from services.face_match.worker import CallbackRelay
from tests.support import channel, start_service
from tests.support.face_match import CALLBACK_KEY, CallbackReceiver, env, receiver_tls

S = submissions_pb2
ORG = "org_fm_egress"


@pytest.fixture
async def service(database_url: str, tmp_path: Path):
    # Development with loopback allowed: what `identity up` runs.
    server = await start_service(
        FACE_MATCH,
        env(database_url, tmp_path / "bucket", FACE_MATCH_CALLBACK_ALLOW_LOOPBACK="true"),
    )
    yield server
    await server.stop(0)


# The black-box probe's forms (F2), each created (and one delivered to) before.
PROBE_FORMS = [
    "http://169.254.169.254/latest/meta-data/",
    "https://10.0.0.1/x",
    "https://012.0.0.1/",
    "https://[::ffff:169.254.169.254]/",
    "http://192.0.2.2:18192/fm-callback",
    "https://100.64.0.1/cb",
    "https://[fd00::1]/cb",
    "https://2852039166/cb",
    "https://0xa9fea9fe/cb",
]


async def test_creation_refuses_non_public_callback_urls_in_development(service) -> None:
    async with channel(service, ORG) as ch:
        stub = submissions_pb2_grpc.SubmissionServiceStub(ch)
        for n, url in enumerate(PROBE_FORMS):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.CreateSubmission(
                    S.CreateSubmissionRequest(
                        correlation_id=f"ssrf-{n}",
                        reference_type=S.REFERENCE_TYPE_KTP,
                        callback_url=url,
                    )
                )
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, url
            info = error_info(status_from_rpc_error(refused.value))
            assert info is not None and info.reason == "INVALID_FIELD"
            assert info.metadata["field"] == "callback_url"
            assert "private, loopback or link-local" in refused.value.details()
            # Nothing was created: the same correlation id with a good URL is new.
            created = await stub.CreateSubmission(
                S.CreateSubmissionRequest(
                    correlation_id=f"ssrf-{n}",
                    reference_type=S.REFERENCE_TYPE_KTP,
                    callback_url="http://127.0.0.1:9/cb",
                )
            )
            assert created.state == S.SUBMISSION_STATE_AWAITING_UPLOAD
            assert len(created.uploads) == 2


class Resolver:
    """An injected resolver: the answers it gives, and the names it was asked."""

    def __init__(self, *answers: Sequence[str]):
        self.answers = list(answers)
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        import ipaddress

        self.asked.append(host)
        answer = self.answers[min(len(self.asked), len(self.answers)) - 1]
        return [ipaddress.ip_address(a) for a in answer]


async def _pending(database: Database, url: str) -> str:
    callback_id = new_id("fmc")
    body = {"event": "face_match.submission.completed", "correlationId": "egress-1"}

    def write(session) -> None:
        session.add(
            Callback(
                callback_id=callback_id,
                submission_id=new_id("fms"),
                org_id=ORG,
                url=url,
                body=json.dumps(body, sort_keys=True, separators=(",", ":")),
                state="pending",
                attempt_count=0,
                next_attempt_at=utcnow() - timedelta(seconds=1),
            )
        )

    await database.run(write)
    return callback_id


async def _row(database: Database, callback_id: str) -> Callback:
    def read(session) -> Callback:
        row = session.scalars(select(Callback).where(Callback.callback_id == callback_id)).one()
        session.expunge(row)
        return row

    return await database.run(read)


@pytest.fixture
async def relay_parts(database_url: str):
    database = Database(database_url)
    receiver = await CallbackReceiver(secret=callback_secret(CALLBACK_KEY, ORG)).start()
    try:
        yield database, receiver
    finally:
        await receiver.stop()
        database.dispose()


def _named(receiver: CallbackReceiver, host: str) -> str:
    """The receiver's URL under another host name (one no DNS server knows)."""
    return receiver.url.replace("127.0.0.1", host)


async def test_a_name_resolving_to_the_checked_address_is_delivered_there(relay_parts) -> None:
    database, receiver = relay_parts
    # partner.test is in no DNS: the post can only arrive if the connection
    # goes to the address the relay resolved and checked.
    resolver = Resolver(["127.0.0.1"])
    relay = CallbackRelay(
        database, signing_key=CALLBACK_KEY, clock=utcnow, allow_loopback=True, resolver=resolver
    )
    callback_id = await _pending(database, _named(receiver, "partner.test"))
    assert await relay.flush() == 1
    [(event, verified)] = receiver.received
    assert verified and event["correlationId"] == "egress-1"
    assert resolver.asked == ["partner.test"]
    row = await _row(database, callback_id)
    assert (row.state, row.last_status, row.last_error) == ("delivered", 200, None)


@pytest.mark.parametrize(
    "answer",
    [["169.254.169.254"], ["10.0.0.1"], ["93.184.216.34", "10.0.0.1"], ["::ffff:a9fe:a9fe"]],
)
async def test_a_name_now_resolving_to_a_forbidden_address_is_not_contacted(
    relay_parts, answer
) -> None:
    database, receiver = relay_parts
    resolver = Resolver(answer)
    relay = CallbackRelay(
        database, signing_key=CALLBACK_KEY, clock=utcnow, allow_loopback=True, resolver=resolver
    )
    callback_id = await _pending(database, _named(receiver, "rebind.test"))
    assert await relay.flush() == 0
    assert resolver.asked == ["rebind.test"]
    row = await _row(database, callback_id)
    assert (row.state, row.last_status, row.last_error) == ("pending", 0, "address_refused")
    assert row.attempt_count == 1


async def test_a_rebinding_name_reaches_nothing_when_loopback_is_not_allowed(
    relay_parts,
) -> None:
    """Public when the URL was accepted, then the receiver's own (loopback)
    address: the receiver is listening there and gets nothing."""
    database, receiver = relay_parts
    resolver = Resolver(["127.0.0.1"])
    relay = CallbackRelay(
        database, signing_key=CALLBACK_KEY, clock=utcnow, allow_loopback=False, resolver=resolver
    )
    callback_id = await _pending(database, _named(receiver, "rebind.test"))
    assert await relay.flush() == 0
    assert receiver.received == []
    row = await _row(database, callback_id)
    assert (row.state, row.last_error) == ("pending", "address_refused")


async def test_a_literal_loopback_receiver_is_delivered_only_when_allowed(relay_parts) -> None:
    database, receiver = relay_parts
    refused_id = await _pending(database, receiver.url)
    closed = CallbackRelay(database, signing_key=CALLBACK_KEY, clock=utcnow)
    assert await closed.flush() == 0
    assert receiver.received == []
    assert (await _row(database, refused_id)).last_error == "address_refused"
    opened_id = await _pending(database, receiver.url)
    opened = CallbackRelay(database, signing_key=CALLBACK_KEY, clock=utcnow, allow_loopback=True)
    assert await opened.flush() == 1
    [(_, verified)] = receiver.received
    assert verified
    assert (await _row(database, opened_id)).state == "delivered"


async def test_the_gateway_answers_400_invalid_field_naming_callback_url(
    service, database_url: str
) -> None:
    """Through the real gateway (an OAuth client's token, face-match alone
    behind it): the partner sees callbackUrl named, never the URL."""
    from services.face_match.oauth import new_client
    from tests.support.gateway import assert_error, bearer, gateway_client, gateway_settings

    database = Database(database_url)
    try:
        view, secret = await database.run(
            lambda s: new_client(s, ORG, "backend", service.settings.oauth_client_pepper, utcnow())
        )
    finally:
        database.dispose()
    async with gateway_client(gateway_settings({"face_match": service.address})) as gateway:
        issued = await gateway.post(
            "/api/oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": view.client_id,
                "client_secret": secret,
            },
        )
        assert issued.status_code == 200, issued.text
        headers = bearer(issued.json()["access_token"])
        path = "/api/face-match/submissions"
        body = {"correlationId": "gw-ssrf", "referenceType": "REFERENCE_TYPE_KTP"}
        for url in ("http://169.254.169.254/latest/meta-data/", "https://0xa9fea9fe/x"):
            answer = await gateway.post(path, json={**body, "callbackUrl": url}, headers=headers)
            error = assert_error(answer, 400, "INVALID_FIELD")
            assert error["metadata"]["field"] == "callbackUrl"
            assert error["message"].startswith("callbackUrl: must not target a private")
            assert "169.254" not in answer.text and "0xa9fea9fe" not in answer.text
        accepted = await gateway.post(
            path, json={**body, "callbackUrl": "http://127.0.0.1:9/cb"}, headers=headers
        )
        assert accepted.status_code == 200, accepted.text


async def _quiet(server) -> None:
    """Stop the service's own loops: the flushes below are the only ones."""
    server.core._stop.set()
    await asyncio.gather(*server.core._tasks, return_exceptions=True)


# -- https receivers with a partner's private CA ------------------------------


@pytest.fixture
async def tls_receiver(tmp_path: Path):
    """A callback receiver over https, its certificate issued by a test CA in no
    trust store; (receiver, the CA's PEM file)."""
    tls = receiver_tls(tmp_path / "tls")
    receiver = await CallbackReceiver(secret=callback_secret(CALLBACK_KEY, ORG)).start(tls)
    try:
        yield receiver, tls / "ca.pem"
    finally:
        await receiver.stop()


@pytest.mark.parametrize("trusted", [True, False])
async def test_an_https_receiver_of_a_private_ca_gets_callbacks_only_when_its_ca_is_trusted(
    database_url: str, tmp_path: Path, tls_receiver, trusted: bool
) -> None:
    """The service started with FACE_MATCH_CALLBACK_CA_FILE delivers the signed
    callback over https; without it the receiver's certificate is not trusted:
    nothing is sent and the attempt is recorded as a TLS failure."""
    receiver, ca_file = tls_receiver
    assert receiver.url.startswith("https://127.0.0.1:")
    extra = {"FACE_MATCH_CALLBACK_CA_FILE": str(ca_file)} if trusted else {}
    server = await start_service(
        FACE_MATCH,
        env(database_url, tmp_path / "bucket", FACE_MATCH_CALLBACK_ALLOW_LOOPBACK="true", **extra),
    )
    try:
        await _quiet(server)
        callback_id = await _pending(server.core.database, receiver.url)
        delivered = await server.core.relay.flush()
        row = await _row(server.core.database, callback_id)
    finally:
        await server.stop(0)
    if trusted:
        assert delivered == 1
        [(event, verified)] = receiver.received
        assert verified and event["correlationId"] == "egress-1"
        assert (row.state, row.last_status, row.last_error) == ("delivered", 200, None)
    else:
        assert delivered == 0
        assert receiver.received == []
        assert (row.state, row.last_status, row.last_error) == ("pending", 0, "tls_error")
        assert row.attempt_count == 1


# -- the callback's delivery state, shown to the partner -------------------------


async def _due_now(database: Database, correlation_id: str) -> None:
    """Make the submission's callback due now (instead of after its backoff)."""
    from sqlalchemy import update

    from services.face_match.models import Submission

    def write(session) -> None:
        submission_id = session.scalars(
            select(Submission.submission_id).where(
                Submission.org_id == ORG, Submission.correlation_id == correlation_id
            )
        ).one()
        session.execute(
            update(Callback)
            .where(Callback.submission_id == submission_id)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )

    await database.run(write)


async def test_get_submission_shows_the_partner_why_its_callbacks_fail_then_that_one_arrived(
    service, database_url: str
) -> None:
    """Through the real gateway: no callback state before the submission ends;
    a receiver answering 500, then a target the relay refuses, each shows its
    reason (a short class, nothing of the receiver's answer); the attempt that
    gets a 2xx shows delivered."""
    from services.face_match.oauth import new_client
    from tests.support import TESTDATA
    from tests.support.biometrics import FACES
    from tests.support.gateway import bearer, gateway_client, gateway_settings

    await _quiet(service)
    database = service.core.database
    view, secret = await database.run(
        lambda s: new_client(s, ORG, "backend", service.settings.oauth_client_pepper, utcnow())
    )
    receiver = await CallbackReceiver(secret=callback_secret(CALLBACK_KEY, ORG), status=500).start()
    try:
        async with gateway_client(gateway_settings({"face_match": service.address})) as gateway:
            issued = await gateway.post(
                "/api/oauth/token",
                json={
                    "grant_type": "client_credentials",
                    "client_id": view.client_id,
                    "client_secret": secret,
                },
            )
            headers = bearer(issued.json()["access_token"])
            path = "/api/face-match/submissions"
            created = await gateway.post(
                path,
                json={
                    "correlationId": "cb-status",
                    "referenceType": "REFERENCE_TYPE_KTP",
                    "callbackUrl": receiver.url,
                },
                headers=headers,
            )
            assert created.status_code == 200, created.text
            # The organisation's first submission: its secret, shown this once.
            receiver.secret = created.json()["callbackSigningSecret"]
            assert receiver.secret != callback_secret(CALLBACK_KEY, ORG)
            images = {
                "selfie": ((FACES / "img2.jpg").read_bytes(), "image/jpeg"),
                "reference": ((TESTDATA / "ktp" / "ktp_flat.png").read_bytes(), "image/png"),
            }
            for upload in created.json()["uploads"]:
                data, content_type = images[upload["image"]]
                put = await gateway.put(
                    upload["url"].removeprefix("http://127.0.0.1:8080"),
                    content=data,
                    headers={"Content-Type": content_type},
                )
                assert put.status_code == 200, put.text
            confirmed = await gateway.post(f"{path}/cb-status/confirm", json={}, headers=headers)
            assert confirmed.status_code == 200, confirmed.text

            async def callback() -> dict | None:
                answer = await gateway.get(f"{path}/cb-status", headers=headers)
                assert answer.status_code == 200, answer.text
                return answer.json()["submission"].get("callback")

            assert await callback() is None  # queued: no callback yet
            # The worker's outcome (a failed submission is called back too).
            lease = await service.core.queue.lease("test-worker")
            assert lease is not None
            assert await service.core.queue.complete(lease, None, "IMAGE_MISSING")
            waiting = await callback()
            assert waiting is not None and waiting["state"] == "CALLBACK_STATE_PENDING"
            assert waiting.get("attempts", 0) == 0 and not waiting.get("lastError")
            assert "lastAttemptAt" not in waiting and "nextAttemptAt" in waiting

            # 1. The receiver answers 500.
            assert await service.core.relay.flush() == 0
            failing = await callback()
            assert failing is not None
            assert failing["state"] == "CALLBACK_STATE_PENDING"
            assert (failing["attempts"], failing["lastHttpStatus"]) == (1, 500)
            assert failing["lastError"] == "http_status"
            assert "nextAttemptAt" in failing and "deliveredAt" not in failing
            assert "lastAttemptAt" in failing
            [(event, verified)] = receiver.received
            assert verified and event["state"] == "FAILED"

            # 2. A relay whose policy refuses loopback targets contacts nothing.
            await _due_now(database, "cb-status")
            closed = CallbackRelay(database, signing_key=CALLBACK_KEY, clock=utcnow)
            assert await closed.flush() == 0
            refused = await callback()
            assert refused is not None
            assert refused["state"] == "CALLBACK_STATE_PENDING"
            assert (refused["attempts"], refused["lastError"]) == (2, "address_refused")
            assert refused.get("lastHttpStatus", 0) == 0, refused  # no answer came
            assert len(receiver.received) == 1

            # 3. The receiver takes it.
            receiver.status = 200
            await _due_now(database, "cb-status")
            assert await service.core.relay.flush() == 1
            delivered = await callback()
            assert delivered is not None
            assert delivered["state"] == "CALLBACK_STATE_DELIVERED"
            assert (delivered["attempts"], delivered["lastHttpStatus"]) == (3, 200)
            assert not delivered.get("lastError") and "nextAttemptAt" not in delivered
            assert "deliveredAt" in delivered and "lastAttemptAt" in delivered
            assert len(receiver.received) == 2
    finally:
        await receiver.stop()


# -- probe3 findings 9, 10, 11 through the gateway and a real receiver ------------


async def test_the_rest_api_refuses_reference_types_and_reused_correlation_ids_precisely(
    service, database_url: str
) -> None:
    """referenceType is spelt as the OpenAPI document names it
    (REFERENCE_TYPE_KTP, ...); an unknown number is INVALID_FIELD "unknown
    value", not "required"; a correlationId created again with another
    referenceType or callbackUrl is 409 IDEMPOTENCY_KEY_REUSED naming the
    field (as the API spells it), never the value."""
    from services.face_match.oauth import new_client
    from tests.support.gateway import assert_error, bearer, gateway_client, gateway_settings

    database = service.core.database
    view, secret = await database.run(
        lambda s: new_client(s, ORG, "backend", service.settings.oauth_client_pepper, utcnow())
    )
    async with gateway_client(gateway_settings({"face_match": service.address})) as gateway:
        issued = await gateway.post(
            "/api/oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": view.client_id,
                "client_secret": secret,
            },
        )
        headers = bearer(issued.json()["access_token"])
        path = "/api/face-match/submissions"
        url = "http://127.0.0.1:9/cb"
        body = {"correlationId": "gw-enum", "referenceType": "REFERENCE_TYPE_PASSPORT"}

        short = await gateway.post(path, json={**body, "referenceType": "KTP"}, headers=headers)
        error = assert_error(short, 400, "MALFORMED_REQUEST")
        assert "REFERENCE_TYPE_KTP" in error["message"]
        unknown = await gateway.post(path, json={**body, "referenceType": 99}, headers=headers)
        error = assert_error(unknown, 400, "INVALID_FIELD")
        assert (error["metadata"]["field"], error["message"]) == (
            "referenceType",
            "referenceType: unknown value",
        )
        for missing in ({"correlationId": "gw-enum"}, {**body, "referenceType": 0}):
            error = assert_error(
                await gateway.post(path, json=missing, headers=headers), 400, "INVALID_FIELD"
            )
            assert error["message"] == "referenceType is required"

        created = await gateway.post(path, json={**body, "callbackUrl": url}, headers=headers)
        assert created.status_code == 200, created.text
        # The JSON number of a named value is the same value.
        again = await gateway.post(
            path, json={**body, "referenceType": 2, "callbackUrl": url}, headers=headers
        )
        assert again.status_code == 200, again.text
        assert again.json()["submissionId"] == created.json()["submissionId"]
        for changed, field in (
            ({"referenceType": "REFERENCE_TYPE_KTP", "callbackUrl": url}, "referenceType"),
            ({"callbackUrl": "http://127.0.0.1:9/other"}, "callbackUrl"),
        ):
            answer = await gateway.post(path, json={**body, **changed}, headers=headers)
            error = assert_error(answer, 409, "IDEMPOTENCY_KEY_REUSED")
            assert error["metadata"]["field"] == field
            assert error["message"].startswith(f"{field}: differs from the submission")
            assert "127.0.0.1" not in answer.text and "REFERENCE_TYPE_KTP" not in answer.text


async def test_an_expired_submission_is_called_back(service) -> None:
    """A partner's backend waiting for the callback is told of an expiry too
    (probe3 finding 9): status commits the expiry, the relay posts the signed
    face_match.submission.expired event, and GetSubmission shows it delivered."""
    from sqlalchemy import update

    from services.face_match.models import Submission

    await _quiet(service)
    receiver = await CallbackReceiver().start()
    try:
        async with channel(service, ORG) as ch:
            stub = submissions_pb2_grpc.SubmissionServiceStub(ch)
            created = await stub.CreateSubmission(
                S.CreateSubmissionRequest(
                    correlation_id="ttl-cb",
                    reference_type=S.REFERENCE_TYPE_KTP,
                    callback_url=receiver.url,
                )
            )
            # The organisation's first submission: its secret, shown once.
            receiver.secret = created.callback_signing_secret
            await service.core.database.run(
                lambda s: s.execute(
                    update(Submission)
                    .where(Submission.correlation_id == "ttl-cb")
                    .values(expires_at=utcnow() - timedelta(seconds=1))
                )
            )
            assert await service.core.relay.flush() == 0  # nothing yet: not expired
            status = await stub.GetSubmissionStatus(
                S.GetSubmissionStatusRequest(correlation_id="ttl-cb")
            )
            assert status.state == S.SUBMISSION_STATE_EXPIRED
            assert await service.core.relay.flush() == 1
            [(event, verified)] = receiver.received
            assert verified
            assert (event["event"], event["state"], event["correlationId"]) == (
                "face_match.submission.expired",
                "EXPIRED",
                "ttl-cb",
            )
            assert event["failureReason"] == "SUBMISSION_EXPIRED"
            details = (
                await stub.GetSubmission(S.GetSubmissionRequest(correlation_id="ttl-cb"))
            ).submission
            assert details.callback.state == S.CALLBACK_STATE_DELIVERED
    finally:
        await receiver.stop()
