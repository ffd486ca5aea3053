"""The face-match service: a real gRPC server on SQLite and PostgreSQL, real
models, real HMAC-signed upload URLs, the queue driven by hand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from gateway import oauth as gateway_oauth
from identity_platform_api.face_match.v1 import (
    oauth_pb2,
    oauth_pb2_grpc,
    submissions_pb2,
    submissions_pb2_grpc,
)
from identity_runtime.status import error_info, status_from_rpc_error
from services.face_match.bucket import UploadSigner
from services.face_match.models import Callback, Job, Submission, Transition
from services.face_match.queue import JobQueue
from services.face_match.service import SPEC as FACE_MATCH
from services.face_match.submissions import Submissions
from services.face_match.worker import Worker, purge_images
from tests.support import TESTDATA, channel, start_service
from tests.support.biometrics import FACES
from tests.support.face_match import UPLOAD_KEY, document, env, face, split_upload_url
from tests.support.meshauth import caller_metadata

S = submissions_pb2
SELFIE = (FACES / "img2.jpg").read_bytes()
SAME_PERSON_REFERENCE = (TESTDATA / "ktp" / "ktp_flat.png").read_bytes()


@pytest.fixture
async def service(database_url: str, tmp_path: Path):
    server = await start_service(
        FACE_MATCH, env(database_url, tmp_path / "bucket", FACE_MATCH_UPLOAD_MAX_BYTES="3000000")
    )
    yield server
    await server.stop(0)


class Partner:
    def __init__(self, server, org_id: str = "org_fm_a"):
        self.server = server
        self.channel = channel(server, org_id)
        self.stub = submissions_pb2_grpc.SubmissionServiceStub(self.channel)
        self.oauth = oauth_pb2_grpc.OAuthServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def create(self, correlation_id: str, **fields) -> S.CreateSubmissionResponse:
        fields.setdefault("reference_type", S.REFERENCE_TYPE_KTP)
        return await self.stub.CreateSubmission(
            S.CreateSubmissionRequest(correlation_id=correlation_id, **fields)
        )

    async def put(self, url: str, data: bytes, content_type: str = "image/jpeg") -> None:
        key, expires, signature = split_upload_url(url)
        await self.put_raw(key, expires, signature, data, content_type)

    async def put_raw(
        self, key: str, expires: int, signature: str, data: bytes, content_type: str
    ) -> None:
        # The gateway forwards uploads as itself (a mesh caller, no organisation).
        await self.stub.PutObject(
            S.PutObjectRequest(
                object_key=key,
                expires=expires,
                signature=signature,
                content_type=content_type,
                data=data,
            ),
            metadata=caller_metadata(
                "", scopes=("mesh",), actor="service:gateway", issuer="gateway"
            ),
        )

    async def upload_both(
        self, created: S.CreateSubmissionResponse, selfie: bytes, reference: bytes
    ):
        urls = {u.image: u.url for u in created.uploads}
        await self.put(urls["selfie"], selfie)
        await self.put(urls["reference"], reference, "image/png")


def refusal(exc: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> tuple[str, str]:
    info = error_info(status_from_rpc_error(exc.value))
    return exc.value.code().name, info.reason if info else ""


async def put_sealed(core, submission_id: str, image: str, data: bytes) -> None:
    """Write `data` into the local bucket sealed as the submission's `image`."""

    def seal(session):
        row = session.get(Submission, submission_id)
        return core.bucket.seals.for_upload(session, row.org_id, submission_id)

    sealed = (await core.database.run(seal)).seal(image, data)
    core.bucket.put(f"{submission_id}/{image}", sealed)


def worker(server) -> Worker:
    core = server.core
    return Worker("test-worker", core.queue, core.bucket, core.matcher)


async def test_create_is_idempotent_and_presigns_both_images(service) -> None:
    partner = Partner(service)
    first = await partner.create("order-1", callback_url="https://partner.example/cb")
    again = await partner.create("order-1", callback_url="https://partner.example/cb")
    assert first.submission_id == again.submission_id
    assert first.state == S.SUBMISSION_STATE_AWAITING_UPLOAD
    assert sorted(u.image for u in first.uploads) == ["reference", "selfie"]
    for upload in first.uploads:
        assert upload.method == "PUT" and upload.headers["Content-Type"] == "image/jpeg"
        assert upload.url.startswith("http://127.0.0.1:8080/api/face-match/uploads/")
        assert upload.max_bytes == 3_000_000
    assert len(first.callback_signing_secret) == 64
    await partner.close()


async def test_create_refuses_bad_fields(service) -> None:
    partner = Partner(service)
    cases = [
        ({"correlation_id": ""}, "INVALID_FIELD"),
        ({"correlation_id": "has space"}, "INVALID_FIELD"),
        ({"correlation_id": "x", "reference_type": S.REFERENCE_TYPE_UNSPECIFIED}, "INVALID_FIELD"),
        ({"correlation_id": "x", "callback_url": "ftp://partner.example/cb"}, "INVALID_FIELD"),
    ]
    for fields, reason in cases:
        correlation_id = fields.pop("correlation_id")
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await partner.create(correlation_id, **fields)
        assert refusal(exc) == ("INVALID_ARGUMENT", reason), fields
    await partner.close()


async def test_reference_type_unset_is_required_and_an_unknown_number_is_invalid(service) -> None:
    """Proto3 enums are open: 99 parses and used to be answered "referenceType
    is required" (probe3 finding 11); it is now INVALID_FIELD "unknown value"."""
    partner = Partner(service)
    for value, message in (
        (S.REFERENCE_TYPE_UNSPECIFIED, "referenceType is required"),
        (99, "reference_type: unknown value"),
        (-1, "reference_type: unknown value"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await partner.create("order-enum", reference_type=value)
        assert refusal(exc) == ("INVALID_ARGUMENT", "INVALID_FIELD"), value
        info = error_info(status_from_rpc_error(exc.value))
        assert info.metadata["field"] == "reference_type"
        assert exc.value.details() == message
    for value in S.ReferenceType.values():
        if value != S.REFERENCE_TYPE_UNSPECIFIED:
            created = await partner.create(f"order-enum-{value}", reference_type=value)
            assert created.state == S.SUBMISSION_STATE_AWAITING_UPLOAD
    await partner.close()


async def test_create_again_with_other_parameters_is_a_conflict_naming_the_field(service) -> None:
    """The correlationId is the create's idempotency key (probe3 finding 10):
    the same parameters are the same submission, others a 409 naming the field
    that differs, never its value; the first submission is unchanged."""
    partner = Partner(service)
    url = "https://partner.example/cb"
    first = await partner.create("order-idem", callback_url=url)
    again = await partner.create("order-idem", callback_url=url)
    assert again.submission_id == first.submission_id
    assert len(again.uploads) == 2
    for fields, field in (
        ({"reference_type": S.REFERENCE_TYPE_PASSPORT, "callback_url": url}, "reference_type"),
        ({"callback_url": "https://partner.example/other"}, "callback_url"),
        ({}, "callback_url"),  # no callback URL this time
        ({"reference_type": S.REFERENCE_TYPE_PASSPORT}, "reference_type"),  # both: the first
    ):
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await partner.create("order-idem", **fields)
        assert refusal(exc) == ("ALREADY_EXISTS", "IDEMPOTENCY_KEY_REUSED"), fields
        info = error_info(status_from_rpc_error(exc.value))
        assert info.metadata["field"] == field
        assert exc.value.details().startswith(f"{field}: differs from the submission")
        assert "partner.example" not in exc.value.details()
        assert "PASSPORT" not in exc.value.details()
    details = (
        await partner.stub.GetSubmission(S.GetSubmissionRequest(correlation_id="order-idem"))
    ).submission
    assert (details.submission_id, details.reference_type) == (
        first.submission_id,
        S.REFERENCE_TYPE_KTP,
    )
    # A submission without a callback URL is re-created only without one.
    await partner.create("order-idem-2")
    assert (await partner.create("order-idem-2")).uploads
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await partner.create("order-idem-2", callback_url=url)
    assert refusal(exc) == ("ALREADY_EXISTS", "IDEMPOTENCY_KEY_REUSED")
    await partner.close()


async def test_upload_refusals_are_precise_and_write_nothing(service) -> None:
    partner = Partner(service)
    created = await partner.create("order-2")
    url = {u.image: u.url for u in created.uploads}["selfie"]
    key, expires, signature = split_upload_url(url)
    tampered_sig = ("0" if signature[0] != "0" else "1") + signature[1:]
    past = int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())
    expired_sig = UploadSigner(UPLOAD_KEY, "http://x", 1).presign(key, past).url.rsplit("=", 1)[1]
    cases = [
        (
            (key, expires, tampered_sig, SELFIE, "image/jpeg"),
            ("PERMISSION_DENIED", "UPLOAD_URL_INVALID"),
        ),
        (
            (key, expires + 60, signature, SELFIE, "image/jpeg"),
            ("PERMISSION_DENIED", "UPLOAD_URL_INVALID"),
        ),
        (
            (key.replace("selfie", "reference"), expires, signature, SELFIE, "image/jpeg"),
            ("PERMISSION_DENIED", "UPLOAD_URL_INVALID"),
        ),
        (
            (key, past, expired_sig, SELFIE, "image/jpeg"),
            ("PERMISSION_DENIED", "UPLOAD_URL_EXPIRED"),
        ),
        (
            (key, expires, signature, SELFIE, "text/plain"),
            ("INVALID_ARGUMENT", "UNSUPPORTED_MEDIA_TYPE"),
        ),
        (
            (key, expires, signature, b"x" * 3_000_001, "image/jpeg"),
            ("RESOURCE_EXHAUSTED", "PAYLOAD_TOO_LARGE"),
        ),
    ]
    for args, expected in cases:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await partner.put_raw(*args)
        assert refusal(exc) == expected, expected
    assert not any(service.core.bucket.directory.rglob("*")), "nothing may be written"
    await partner.close()


async def test_confirm_before_both_uploads_is_409_and_unknown_is_404(service) -> None:
    partner, other = Partner(service), Partner(service, "org_fm_b")
    created = await partner.create("order-3")
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await partner.stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id="order-3"))
    assert refusal(exc) == ("ABORTED", "UPLOADS_INCOMPLETE")
    await partner.put({u.image: u.url for u in created.uploads}["selfie"], SELFIE)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await partner.stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id="order-3"))
    assert error_info(status_from_rpc_error(exc.value)).metadata["missing"] == "reference"
    for stub, correlation_id in ((partner.stub, "nope"), (other.stub, "order-3")):
        for call, request in (
            (stub.ConfirmSubmission, S.ConfirmSubmissionRequest(correlation_id=correlation_id)),
            (stub.GetSubmissionStatus, S.GetSubmissionStatusRequest(correlation_id=correlation_id)),
            (stub.GetSubmission, S.GetSubmissionRequest(correlation_id=correlation_id)),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await call(request)
            assert refusal(exc) == ("NOT_FOUND", "SUBMISSION_NOT_FOUND")
    # No id at all is a malformed request, as on CreateSubmission (second black-box probe).
    for call, request in (
        (partner.stub.ConfirmSubmission, S.ConfirmSubmissionRequest()),
        (partner.stub.GetSubmissionStatus, S.GetSubmissionStatusRequest()),
        (partner.stub.GetSubmission, S.GetSubmissionRequest()),
        (partner.stub.EraseSubmission, S.EraseSubmissionRequest()),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await call(request)
        assert refusal(exc) == ("INVALID_ARGUMENT", "INVALID_FIELD")
    # Another organisation's create of the same correlation id is its own submission.
    theirs = await other.create("order-3")
    assert theirs.submission_id != created.submission_id
    await partner.close()
    await other.close()


async def test_whole_flow_matches_the_card_portrait(service) -> None:
    partner = Partner(service)
    created = await partner.create("order-4")
    await partner.upload_both(created, SELFIE, SAME_PERSON_REFERENCE)
    confirmed = await partner.stub.ConfirmSubmission(
        S.ConfirmSubmissionRequest(correlation_id="order-4")
    )
    assert confirmed.state == S.SUBMISSION_STATE_QUEUED
    # Confirming again changes nothing; uploads are closed once queued.
    again = await partner.stub.ConfirmSubmission(
        S.ConfirmSubmissionRequest(correlation_id="order-4")
    )
    assert again.state == S.SUBMISSION_STATE_QUEUED
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await partner.put(created.uploads[0].url, SELFIE)
    assert refusal(exc) == ("ABORTED", "UPLOADS_CLOSED")

    assert await worker(service).run_once() is True
    assert await worker(service).run_once() is False
    status = await partner.stub.GetSubmissionStatus(
        S.GetSubmissionStatusRequest(correlation_id="order-4")
    )
    assert status.state == S.SUBMISSION_STATE_COMPLETED
    details = (
        await partner.stub.GetSubmission(S.GetSubmissionRequest(correlation_id="order-4"))
    ).submission
    assert details.decision in (S.DECISION_MATCH, S.DECISION_REVIEW)
    assert details.similarity >= 0.48 - 0.08
    assert 0 < details.fmr_at_score < 0.01
    assert details.reference_portrait.width > 0
    assert details.detector_model_id.startswith("yunet-2023mar")
    assert details.embedding_model_id.startswith("sface-2021dec")
    assert [t.state for t in details.transitions] == [
        S.SUBMISSION_STATE_CREATED,
        S.SUBMISSION_STATE_AWAITING_UPLOAD,
        S.SUBMISSION_STATE_QUEUED,
        S.SUBMISSION_STATE_PROCESSING,
        S.SUBMISSION_STATE_COMPLETED,
    ]
    await partner.close()


async def test_the_main_portrait_is_matched_not_the_ghost(service) -> None:
    partner = Partner(service)
    holder, stranger = face("img1.jpg"), face("img3.jpg")
    for correlation_id, card, expected in (
        ("ghost-1", document(holder, stranger), S.DECISION_MATCH),
        ("ghost-2", document(stranger, holder), S.DECISION_NO_MATCH),
    ):
        created = await partner.create(correlation_id, reference_type=S.REFERENCE_TYPE_PASSPORT)
        urls = {u.image: u.url for u in created.uploads}
        await partner.put(urls["selfie"], SELFIE)
        await partner.put(urls["reference"], card)
        await partner.stub.ConfirmSubmission(
            S.ConfirmSubmissionRequest(correlation_id=correlation_id)
        )
        assert await worker(service).run_once()
        details = (
            await partner.stub.GetSubmission(S.GetSubmissionRequest(correlation_id=correlation_id))
        ).submission
        assert details.decision == expected, (correlation_id, details.similarity)
        assert details.reference_portrait.x < 400  # the left (main) portrait
    await partner.close()


async def test_not_an_image_is_refused_at_confirm_and_can_be_uploaded_again(
    service, tmp_path: Path
) -> None:
    partner = Partner(service)
    created = await partner.create("order-5")
    # The content type says JPEG; the bytes are not an image.
    await partner.upload_both(created, b"GIF89a not really an image", SAME_PERSON_REFERENCE)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await partner.stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id="order-5"))
    assert refusal(exc) == ("INVALID_ARGUMENT", "IMAGE_UNDECODABLE")
    assert error_info(status_from_rpc_error(exc.value)).metadata["image"] == "selfie"
    folder = tmp_path / "bucket" / created.submission_id
    assert sorted(p.name for p in folder.iterdir()) == ["reference"]
    assert not await worker(service).run_once()
    status = await partner.stub.GetSubmissionStatus(
        S.GetSubmissionStatusRequest(correlation_id="order-5")
    )
    assert status.state == S.SUBMISSION_STATE_AWAITING_UPLOAD
    # A good selfie on a fresh URL: confirmed, matched.
    fresh = {u.image: u.url for u in (await partner.create("order-5")).uploads}
    await partner.put(fresh["selfie"], SELFIE)
    await partner.stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id="order-5"))
    assert await worker(service).run_once()
    status = await partner.stub.GetSubmissionStatus(
        S.GetSubmissionStatusRequest(correlation_id="order-5")
    )
    assert status.state == S.SUBMISSION_STATE_COMPLETED
    await partner.close()


async def test_an_image_the_worker_cannot_use_still_fails_the_submission(service) -> None:
    partner = Partner(service)
    created = await partner.create("order-5b")
    await partner.upload_both(created, SELFIE, SAME_PERSON_REFERENCE)
    await partner.stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id="order-5b"))
    # Replaced in the store after confirm (S3 cannot close a presigned PUT),
    # sealed as this submission's selfie (a plain or foreign object is refused
    # before decoding: test_face_match_sealing.py).
    await put_sealed(service.core, created.submission_id, "selfie", b"GIF89a not an image")
    assert await worker(service).run_once()
    status = await partner.stub.GetSubmissionStatus(
        S.GetSubmissionStatusRequest(correlation_id="order-5b")
    )
    assert status.state == S.SUBMISSION_STATE_FAILED
    assert status.failure_reason == "IMAGE_UNDECODABLE"
    await partner.close()


async def test_a_lost_lease_cannot_commit_and_the_job_completes_once(service) -> None:
    partner = Partner(service)
    created = await partner.create("order-6")
    await partner.upload_both(created, SELFIE, SAME_PERSON_REFERENCE)
    await partner.stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id="order-6"))
    core = service.core
    now = [datetime.now(UTC)]
    queue = JobQueue(
        core.database,
        clock=lambda: now[0],
        visibility_seconds=30,
        max_attempts=3,
        image_retention_days=1,
    )
    first = await queue.lease("worker-that-dies")
    assert first is not None
    assert await queue.lease("other") is None  # hidden while leased
    now[0] += timedelta(seconds=31)  # the first worker died; its lease expires
    second = await queue.lease("survivor")
    assert second is not None and second.job_id == first.job_id and second.attempt == 2
    survivor = Worker("survivor", queue, core.bucket, core.matcher)
    assert await survivor.process(second) is True
    # The dead worker wakes up and tries to commit: fenced off.
    assert await queue.complete(first, {"decision": "NO_MATCH"}, "") is False
    details = (
        await partner.stub.GetSubmission(S.GetSubmissionRequest(correlation_id="order-6"))
    ).submission
    assert details.state == S.SUBMISSION_STATE_COMPLETED and details.decision != S.DECISION_NO_MATCH

    def counts(session):
        done = session.scalar(
            select(func.count()).select_from(Transition).where(Transition.to_state == "COMPLETED")
        )
        return done, session.scalar(select(Job.state))

    assert await core.database.run(counts) == (1, "done")
    await partner.close()


async def test_a_poison_job_fails_its_submission_after_max_attempts(service) -> None:
    partner = Partner(service)
    created = await partner.create("order-7")
    await partner.upload_both(created, SELFIE, SAME_PERSON_REFERENCE)
    await partner.stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id="order-7"))
    now = [datetime.now(UTC)]
    queue = JobQueue(
        service.core.database,
        clock=lambda: now[0],
        visibility_seconds=10,
        max_attempts=2,
        image_retention_days=1,
    )
    for _ in range(2):  # leased, and each worker dies
        assert await queue.lease("crashing") is not None
        now[0] += timedelta(seconds=11)
    assert await queue.lease("next") is None
    status = await partner.stub.GetSubmissionStatus(
        S.GetSubmissionStatusRequest(correlation_id="order-7")
    )
    assert (status.state, status.failure_reason) == (S.SUBMISSION_STATE_FAILED, "PROCESSING_FAILED")
    assert await service.core.database.run(lambda s: s.scalar(select(Job.state))) == "dead"
    await partner.close()


async def test_oauth_client_credentials(service) -> None:
    partner = Partner(service)
    for blank in ("", "   "):  # second black-box probe: a nameless client was made
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await partner.oauth.CreateClient(oauth_pb2.CreateClientRequest(name=blank))
        info = error_info(status_from_rpc_error(refused.value))
        assert (info.reason, info.metadata["field"]) == ("INVALID_FIELD", "name")
    made = await partner.oauth.CreateClient(oauth_pb2.CreateClientRequest(name="backend"))
    issued = await partner.oauth.IssueToken(
        oauth_pb2.IssueTokenRequest(
            grant_type="client_credentials",
            client_id=made.client.client_id,
            client_secret=made.client_secret,
        )
    )
    assert issued.token_type == "Bearer" and issued.expires_in == 300
    jwks = await partner.oauth.GetJwks(oauth_pb2.GetJwksRequest())
    keys = gateway_oauth.public_keys(
        [{"kty": k.kty, "crv": k.crv, "x": k.x, "kid": k.kid} for k in jwks.keys]
    )
    claims = gateway_oauth.verify(issued.access_token, keys, "identity-platform/face-match")
    assert (claims.org_id, claims.client_id, claims.scopes) == (
        "org_fm_a",
        made.client.client_id,
        frozenset({"public"}),
    )
    bad = [
        ("client_credentials", made.client.client_id, made.client_secret + "x", "UNAUTHENTICATED"),
        ("client_credentials", "fmci_unknown", made.client_secret, "UNAUTHENTICATED"),
        ("password", made.client.client_id, made.client_secret, "INVALID_ARGUMENT"),
    ]
    for grant, client_id, secret, code in bad:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await partner.oauth.IssueToken(
                oauth_pb2.IssueTokenRequest(
                    grant_type=grant, client_id=client_id, client_secret=secret
                )
            )
        assert exc.value.code().name == code
    other = Partner(service, "org_fm_b")
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await other.oauth.RevokeClient(
            oauth_pb2.RevokeClientRequest(client_id=made.client.client_id)
        )
    assert refusal(exc) == ("NOT_FOUND", "CLIENT_NOT_FOUND")
    await partner.oauth.RevokeClient(oauth_pb2.RevokeClientRequest(client_id=made.client.client_id))
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await partner.oauth.IssueToken(
            oauth_pb2.IssueTokenRequest(
                grant_type="client_credentials",
                client_id=made.client.client_id,
                client_secret=made.client_secret,
            )
        )
    assert refusal(exc) == ("UNAUTHENTICATED", "CLIENT_CREDENTIALS_INVALID")
    # A token signed by another key is refused.
    with pytest.raises(Exception, match="not valid"):
        gateway_oauth.verify(issued.access_token, {}, "identity-platform/face-match")
    await partner.close()
    await other.close()


async def test_erasure_removes_the_submission_its_rows_and_its_images(service) -> None:
    partner, other = Partner(service), Partner(service, "org_fm_b")
    created = await partner.create("order-8")
    await partner.upload_both(created, SELFIE, SAME_PERSON_REFERENCE)
    await partner.stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id="order-8"))
    assert await worker(service).run_once()
    assert any(service.core.bucket.directory.rglob("selfie"))
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await other.stub.EraseSubmission(S.EraseSubmissionRequest(correlation_id="order-8"))
    assert refusal(exc) == ("NOT_FOUND", "SUBMISSION_NOT_FOUND")
    erased = await partner.stub.EraseSubmission(S.EraseSubmissionRequest(correlation_id="order-8"))
    assert erased.submission_id == created.submission_id
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await partner.stub.GetSubmission(S.GetSubmissionRequest(correlation_id="order-8"))
    assert refusal(exc) == ("NOT_FOUND", "SUBMISSION_NOT_FOUND")
    assert not any(service.core.bucket.directory.rglob("*/selfie"))

    def left(session):
        return [
            session.scalar(
                select(func.count()).select_from(m).where(m.submission_id == erased.submission_id)
            )
            for m in (Job, Callback)
        ]

    assert await service.core.database.run(left) == [0, 0]

    def kept(session):
        return session.execute(
            select(Transition.to_state, Transition.audited_at)
            .where(Transition.submission_id == erased.submission_id)
            .order_by(Transition.sequence)
        ).all()

    # Only the transitions the audit relay has not appended yet (no audit
    # service here) stay, the erasure last; the relay deletes them once
    # appended (test_face_match_audit_relay).
    rows = await service.core.database.run(kept)
    assert rows[-1][0] == "ERASED"
    assert all(audited_at is None for _, audited_at in rows)
    again = await partner.create("order-8")
    assert again.submission_id != created.submission_id
    await partner.close()
    await other.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_presentation_attack_selfie_is_never_a_plain_match(service) -> None:
    spoof = TESTDATA / "spoof"
    matcher = service.core.matcher
    live = (spoof / "image_T1.jpg").read_bytes()
    attacks = [(spoof / name).read_bytes() for name in ("image_F1.jpg", "image_F2.jpg")]
    genuine = matcher.match(live, live)
    assert genuine["pad"]["live"] is True
    assert "PAD_SUSPECTED" not in genuine["quality"][0]["reasons"]
    # The reference's photo sent as the selfie is no new capture (probe 6, D8).
    assert genuine["quality"][0]["reasons"] == ["SAME_PHOTO"]
    assert genuine["decision"] == "REVIEW"
    for attack in attacks:
        result = matcher.match(attack, attack)  # the same photo on both sides: a perfect score
        assert result["pad"]["live"] is False
        assert "PAD_SUSPECTED" in result["quality"][0]["reasons"]
        assert result["decision"] == "REVIEW"


async def test_unconfirmed_submissions_expire_and_their_images_are_purged(service) -> None:
    partner = Partner(service)
    created = await partner.create("order-9")
    await partner.put({u.image: u.url for u in created.uploads}["selfie"], SELFIE)
    core = service.core
    later = datetime.now(UTC) + timedelta(days=2)
    expiring = Submissions(
        core.database,
        core.bucket,
        core.submissions.signer,
        clock=lambda: later,
        upload_url_seconds=900,
        ttl_seconds=86_400,
        callback_signing_key="k" * 32,
    )
    assert await expiring.expire_due() == 1
    assert await expiring.expire_due() == 0
    status = await partner.stub.GetSubmissionStatus(
        S.GetSubmissionStatusRequest(correlation_id="order-9")
    )
    assert (status.state, status.failure_reason) == (
        S.SUBMISSION_STATE_EXPIRED,
        "SUBMISSION_EXPIRED",
    )
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await partner.stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id="order-9"))
    assert refusal(exc) == ("FAILED_PRECONDITION", "SUBMISSION_EXPIRED")
    assert await purge_images(core.database, core.bucket, later) == 1
    assert not any(core.bucket.directory.rglob("*/selfie"))
    # The result itself goes once the retention has passed, not before.
    assert await expiring.purge_results(retention_days=3) == 0
    assert await expiring.purge_results(retention_days=0) == 0  # 0 = keep for ever
    much_later = Submissions(
        core.database,
        core.bucket,
        core.submissions.signer,
        clock=lambda: later + timedelta(days=4),
        upload_url_seconds=900,
        ttl_seconds=86_400,
        callback_signing_key="k" * 32,
    )
    assert await much_later.purge_results(retention_days=3) == 1
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await partner.stub.GetSubmissionStatus(
            S.GetSubmissionStatusRequest(correlation_id="order-9")
        )
    assert refusal(exc) == ("NOT_FOUND", "SUBMISSION_NOT_FOUND")
    await partner.close()


async def _past_its_ttl(core, correlation_id: str) -> str:
    """Make the submission's TTL run out (its expires_at a second ago); its id."""
    from sqlalchemy import update

    from services.face_match.models import Submission

    def write(session) -> str:
        row = session.scalars(
            select(Submission).where(Submission.correlation_id == correlation_id)
        ).one()
        session.execute(
            update(Submission)
            .where(Submission.submission_id == row.submission_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        return row.submission_id

    return await core.database.run(write)


async def _expiry_rows(core, submission_id: str) -> tuple[list[str], list[dict]]:
    """(the states of its transitions, the bodies of its callbacks)."""
    import json

    from services.face_match.models import Callback

    def read(session) -> tuple[list[str], list[dict]]:
        states = session.scalars(
            select(Transition.to_state)
            .where(Transition.submission_id == submission_id)
            .order_by(Transition.sequence)
        ).all()
        bodies = session.scalars(
            select(Callback.body).where(Callback.submission_id == submission_id)
        ).all()
        return list(states), [json.loads(b) for b in bodies]

    return await core.database.run(read)


@pytest.mark.parametrize("first_call", ["status", "details", "put", "confirm"])
async def test_whichever_call_sees_an_expired_submission_first_commits_its_expiry(
    service, first_call: str
) -> None:
    """probe3 finding 9: after the TTL (before the 60 s sweep) status said
    AWAITING_UPLOAD while an upload was refused SUBMISSION_EXPIRED and its
    expiry rolled back. Now the first call commits the expiry (transition,
    audit outbox row, callback), then answers: status and details EXPIRED,
    upload and confirm refused SUBMISSION_EXPIRED; every later call agrees."""
    partner = Partner(service)
    correlation_id = f"order-ttl-{first_call}"
    created = await partner.create(correlation_id, callback_url="https://partner.example/cb")
    selfie_url = {u.image: u.url for u in created.uploads}["selfie"]
    await partner.put(selfie_url, SELFIE)  # before the TTL: accepted
    submission_id = await _past_its_ttl(service.core, correlation_id)

    async def status() -> int:
        return (
            await partner.stub.GetSubmissionStatus(
                S.GetSubmissionStatusRequest(correlation_id=correlation_id)
            )
        ).state

    if first_call == "status":
        answer = await partner.stub.GetSubmissionStatus(
            S.GetSubmissionStatusRequest(correlation_id=correlation_id)
        )
        assert (answer.state, answer.failure_reason) == (
            S.SUBMISSION_STATE_EXPIRED,
            "SUBMISSION_EXPIRED",
        )
    elif first_call == "details":
        details = (
            await partner.stub.GetSubmission(S.GetSubmissionRequest(correlation_id=correlation_id))
        ).submission
        assert details.state == S.SUBMISSION_STATE_EXPIRED
        assert details.failure_reason == "SUBMISSION_EXPIRED"
        assert [t.state for t in details.transitions][-1] == S.SUBMISSION_STATE_EXPIRED
        assert details.callback.state == S.CALLBACK_STATE_PENDING
    else:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            if first_call == "put":
                await partner.put(selfie_url, SELFIE)
            else:
                await partner.stub.ConfirmSubmission(
                    S.ConfirmSubmissionRequest(correlation_id=correlation_id)
                )
        assert refusal(exc) == ("FAILED_PRECONDITION", "SUBMISSION_EXPIRED")

    states, callbacks = await _expiry_rows(service.core, submission_id)
    assert states == ["CREATED", "AWAITING_UPLOAD", "EXPIRED"]
    [body] = callbacks
    assert body["event"] == "face_match.submission.expired"
    assert (body["state"], body["failureReason"]) == ("EXPIRED", "SUBMISSION_EXPIRED")
    # Every later call agrees, and nothing is expired twice.
    assert await status() == S.SUBMISSION_STATE_EXPIRED
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await partner.put(selfie_url, SELFIE)
    assert refusal(exc) == ("FAILED_PRECONDITION", "SUBMISSION_EXPIRED")
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await partner.stub.ConfirmSubmission(
            S.ConfirmSubmissionRequest(correlation_id=correlation_id)
        )
    assert refusal(exc) == ("FAILED_PRECONDITION", "SUBMISSION_EXPIRED")
    again = await partner.create(correlation_id, callback_url="https://partner.example/cb")
    assert (again.state, list(again.uploads)) == (S.SUBMISSION_STATE_EXPIRED, [])
    assert await service.core.submissions.expire_due() == 0
    assert await _expiry_rows(service.core, submission_id) == (states, callbacks)
    await partner.close()


async def test_an_expiry_without_a_callback_url_writes_no_callback(service) -> None:
    partner = Partner(service)
    await partner.create("order-ttl-quiet")
    submission_id = await _past_its_ttl(service.core, "order-ttl-quiet")
    assert await service.core.submissions.expire_due() == 1
    states, callbacks = await _expiry_rows(service.core, submission_id)
    assert (states[-1], callbacks) == ("EXPIRED", [])
    await partner.close()


async def test_audit_relay_claims_are_written_so_two_relays_never_share_a_row(service) -> None:
    # Stop the service's own relay so the claims below are the only ones.
    service.core._stop.set()
    await asyncio.gather(*service.core._tasks, return_exceptions=True)
    partner = Partner(service)
    await partner.create("order-10")
    relay = service.core.audit
    first = await service.core.database.run(relay._claim)
    second = await service.core.database.run(relay._claim)
    assert len(first) >= 2 and second == []
    await partner.close()


async def test_the_job_queue_depth_and_oldest_age_are_exported(service) -> None:
    """identity_queue_depth / _oldest_age_seconds{queue="face_match_jobs"}: jobs
    queued or in flight, and how long the oldest has waited (the backlog alert)."""
    partner = Partner(service)
    for order in ("order-q1", "order-q2"):
        created = await partner.create(order)
        await partner.upload_both(created, SELFIE, SAME_PERSON_REFERENCE)
        await partner.stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id=order))
    now = [datetime.now(UTC) + timedelta(seconds=90)]
    queue = JobQueue(
        service.core.database,
        clock=lambda: now[0],
        visibility_seconds=30,
        max_attempts=3,
        image_retention_days=1,
    )

    def gauge(name: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"queue": "face_match_jobs"})

    depth, age = await queue.measure()
    assert depth == 2 and 90 <= age < 150
    assert gauge("identity_queue_depth") == 2
    lease = await queue.lease("w1")
    assert lease is not None
    assert (await queue.measure())[0] == 2  # in flight still counts
    # Completion as a worker commits it (the matching itself is other tests').
    assert await queue.complete(lease, {"decision": "NO_MATCH"}, "") is True
    assert (await queue.measure())[0] == 1
    second = await queue.lease("w1")
    assert second is not None and await queue.complete(second, None, "PROCESSING_FAILED")
    assert await queue.measure() == (0, 0.0)
    assert gauge("identity_queue_depth") == 0
    assert gauge("identity_queue_oldest_age_seconds") == 0
    await partner.close()
