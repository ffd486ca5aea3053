"""face-match with an S3-compatible store: moto's standalone S3 server on this
machine (the only S3-protocol server installable here offline), real HTTP,
real SigV4 presigned PUTs. What moto does not prove (it does not enforce
presigned signatures, expiry or content types like a real store; no IAM,
region endpoints): docs/face-match.md. It records the server-side encryption
a PUT asks for; that the URL makes the encryption headers mandatory is
checked by verifying the SigV4 signature as a real store does
(`sigv4_store_accepts`)."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

import boto3
import grpc
import httpx
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer
from sqlalchemy import select

from identity_platform_api.face_match.v1 import submissions_pb2 as S
from identity_platform_api.face_match.v1 import submissions_pb2_grpc
from identity_runtime.status import error_info, status_from_rpc_error
from services.face_match.audit import _entry as audit_entry
from services.face_match.bucket import S3Store
from services.face_match.models import Transition
from services.face_match.service import SPEC as FACE_MATCH
from services.face_match.worker import Worker, purge_images
from tests.service.test_face_match import Partner, refusal
from tests.support import TESTDATA, channel, start_service
from tests.support.biometrics import FACES
from tests.support.face_match import env
from tests.support.meshauth import caller_metadata

SELFIE = (FACES / "img2.jpg").read_bytes()
REFERENCE = (TESTDATA / "ktp" / "ktp_flat.png").read_bytes()
BUCKET = "face-match-test"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    server.stop()


@pytest.fixture
async def service(database_url: str, tmp_path: Path, s3):
    endpoint, _ = s3
    server = await start_service(
        FACE_MATCH,
        env(
            database_url,
            tmp_path / "unused",
            FACE_MATCH_STORAGE="s3",
            FACE_MATCH_S3_BUCKET=BUCKET,
            FACE_MATCH_S3_ENDPOINT_URL=endpoint,
            FACE_MATCH_S3_REGION="us-east-1",
            FACE_MATCH_S3_PATH_STYLE="true",
            FACE_MATCH_UPLOAD_MAX_BYTES="2000000",
        ),
    )
    yield server
    await server.stop(0)


async def test_presigned_puts_to_the_store_then_the_whole_flow(service, s3) -> None:
    _, client = s3
    grpc_channel = channel(service, "org_s3")
    stub = submissions_pb2_grpc.SubmissionServiceStub(grpc_channel)
    created = await stub.CreateSubmission(
        S.CreateSubmissionRequest(correlation_id="s3-1", reference_type=S.REFERENCE_TYPE_KTP)
    )
    uploads = {u.image: u for u in created.uploads}
    assert uploads["selfie"].url.startswith(s3[0] + f"/{BUCKET}/")
    assert "X-Amz-Signature=" in uploads["selfie"].url
    # Confirm before the objects exist: 409.
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id="s3-1"))
    assert exc.value.code() == grpc.StatusCode.ABORTED
    async with httpx.AsyncClient() as http:
        for image, data in (("selfie", SELFIE), ("reference", REFERENCE)):
            upload = uploads[image]
            response = await http.put(upload.url, content=data, headers=dict(upload.headers))
            assert response.status_code == 200, response.text
    confirmed = await stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id="s3-1"))
    assert confirmed.state == S.SUBMISSION_STATE_QUEUED
    core = service.core
    assert await Worker("s3-worker", core.queue, core.bucket, core.matcher).run_once()
    details = (await stub.GetSubmission(S.GetSubmissionRequest(correlation_id="s3-1"))).submission
    assert details.state == S.SUBMISSION_STATE_COMPLETED
    assert details.decision in (S.DECISION_MATCH, S.DECISION_REVIEW)
    # Retention: the images leave the store once their day has passed.
    assert await purge_images(core.database, core.bucket, datetime.now(UTC)) == 0
    assert (
        await purge_images(core.database, core.bucket, datetime.now(UTC) + timedelta(days=2)) == 1
    )
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=created.submission_id)
    assert listed.get("KeyCount", 0) == 0
    await grpc_channel.close()


async def test_the_upload_path_takes_no_upload_on_s3(service, s3) -> None:
    """With storage=s3 uploads go straight to the store: PutObject and
    AuthorizeUpload (the gateway's upload path) answer 409 UPLOADS_CLOSED,
    ABORTED like an upload after confirm, whatever the URL says."""
    partner = Partner(service, "org_s3")
    created = await partner.create("s3-closed")
    key = f"{created.submission_id}/selfie"
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await partner.put_raw(key, 4102444800, "0" * 64, SELFIE, "image/jpeg")
    assert refusal(exc) == ("ABORTED", "UPLOADS_CLOSED")
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await partner.stub.AuthorizeUpload(
            S.AuthorizeUploadRequest(
                object_key=key,
                expires=4102444800,
                signature="0" * 64,
                content_type="image/jpeg",
                declared_size=len(SELFIE),
            ),
            # As the gateway asks it (a mesh caller, no organisation).
            metadata=caller_metadata(
                "", scopes=("mesh",), actor="service:gateway", issuer="gateway"
            ),
        )
    assert refusal(exc) == ("ABORTED", "UPLOADS_CLOSED")
    # Nothing reached the store; the submission still awaits its (S3) uploads.
    assert _stored(s3[1], created.submission_id) == set()
    status = await partner.stub.GetSubmissionStatus(
        S.GetSubmissionStatusRequest(correlation_id="s3-closed")
    )
    assert status.state == S.SUBMISSION_STATE_AWAITING_UPLOAD
    await partner.close()


async def test_an_object_over_the_limit_replaced_after_confirm_fails_the_submission(
    service, s3
) -> None:
    _, client = s3
    grpc_channel = channel(service, "org_s3")
    stub = submissions_pb2_grpc.SubmissionServiceStub(grpc_channel)
    created = await stub.CreateSubmission(
        S.CreateSubmissionRequest(correlation_id="s3-2", reference_type=S.REFERENCE_TYPE_OTHER)
    )
    client.put_object(Bucket=BUCKET, Key=f"{created.submission_id}/selfie", Body=SELFIE)
    client.put_object(Bucket=BUCKET, Key=f"{created.submission_id}/reference", Body=REFERENCE)
    await stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id="s3-2"))
    # S3 cannot bound a presigned PUT's size, nor close it at confirm: the
    # partner wrote 2 MB + 1 over the checked selfie; the worker refuses it.
    client.put_object(
        Bucket=BUCKET, Key=f"{created.submission_id}/selfie", Body=b"\xff" * 2_000_001
    )
    core = service.core
    assert await Worker("s3-worker", core.queue, core.bucket, core.matcher).run_once()
    status = await stub.GetSubmissionStatus(S.GetSubmissionStatusRequest(correlation_id="s3-2"))
    assert (status.state, status.failure_reason) == (S.SUBMISSION_STATE_FAILED, "IMAGE_TOO_LARGE")
    await grpc_channel.close()


def _truncated_jpeg() -> bytes:
    return SELFIE[: len(SELFIE) // 2]


async def _put(url_upload: S.Upload, data: bytes) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.put(url_upload.url, content=data, headers=dict(url_upload.headers))
        assert response.status_code == 200, response.text


async def _upload_both(stub, correlation_id: str, selfie: bytes, reference: bytes) -> str:
    created = await stub.CreateSubmission(
        S.CreateSubmissionRequest(
            correlation_id=correlation_id, reference_type=S.REFERENCE_TYPE_KTP
        )
    )
    uploads = {u.image: u for u in created.uploads}
    await _put(uploads["selfie"], selfie)
    await _put(uploads["reference"], reference)
    return str(created.submission_id)


def _stored(client, submission_id: str) -> set[str]:
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{submission_id}/")
    return {item["Key"].split("/", 1)[1] for item in listed.get("Contents", [])}


@pytest.mark.parametrize(
    ("image", "data", "reason"),
    [
        ("selfie", b"Dear partner,\nthis is a text file, not a photo.\n", "IMAGE_UNDECODABLE"),
        ("reference", _truncated_jpeg(), "IMAGE_UNDECODABLE"),
        ("selfie", b"", "IMAGE_EMPTY"),
        ("reference", b"\xff\xd8\xff" + b"\x00" * 2_000_000, "IMAGE_TOO_LARGE"),
    ],
    ids=["text", "truncated-jpeg", "empty", "oversized"],
)
async def test_confirm_refuses_an_object_that_is_not_a_usable_image(
    service, s3, image: str, data: bytes, reason: str
) -> None:
    """Refused at confirm, naming the image; its object deleted, nothing
    queued, the refusal recorded for the audit chain; a good upload of that
    image then confirms and completes."""
    _, client = s3
    grpc_channel = channel(service, "org_s3")
    stub = submissions_pb2_grpc.SubmissionServiceStub(grpc_channel)
    correlation_id = f"bad-{image}-{reason}-{len(data)}"
    good = {"selfie": SELFIE, "reference": REFERENCE}
    submission_id = await _upload_both(
        stub, correlation_id, *({**good, image: data}[name] for name in ("selfie", "reference"))
    )
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id=correlation_id))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(status_from_rpc_error(exc.value))
    assert info is not None and info.reason == reason
    assert info.metadata["image"] == image and info.metadata["refused"] == image
    assert image in (exc.value.details() or "")
    # The answer names the image and the problem, never the content.
    said = (exc.value.details() or "") + repr(dict(info.metadata))
    assert "Dear partner" not in said and "\\x" not in said
    if reason == "IMAGE_TOO_LARGE":
        assert info.metadata["limit"] == "2000000"
    # The refused object is gone, the other kept; the submission awaits a new upload.
    assert _stored(client, submission_id) == {"selfie", "reference"} - {image}
    status = await stub.GetSubmissionStatus(
        S.GetSubmissionStatusRequest(correlation_id=correlation_id)
    )
    assert status.state == S.SUBMISSION_STATE_AWAITING_UPLOAD
    core = service.core
    assert not await Worker("s3-worker", core.queue, core.bucket, core.matcher).run_once()
    # Confirming again before the new upload: that image is missing.
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id=correlation_id))
    assert again.value.code() == grpc.StatusCode.ABORTED
    assert error_info(status_from_rpc_error(again.value)).metadata["missing"] == image
    # The refusal is a recorded transition, audited as face_match.upload_refused.
    rows = await core.database.run(
        lambda s: list(
            s.scalars(
                select(Transition)
                .where(Transition.submission_id == submission_id)
                .order_by(Transition.sequence)
            )
        )
    )
    refused = [r for r in rows if r.from_state == r.to_state]
    assert [(r.to_state, r.detail) for r in refused] == [
        ("AWAITING_UPLOAD", f"upload refused: {image} {reason}")
    ]
    entry = audit_entry(refused[0])
    assert (entry.action, entry.outcome) == ("face_match.upload_refused", "denied")
    assert entry.details["detail"] == f"upload refused: {image} {reason}"
    # The success path after a refusal: fresh URLs, a good upload, confirmed and matched.
    fresh = await stub.CreateSubmission(
        S.CreateSubmissionRequest(
            correlation_id=correlation_id, reference_type=S.REFERENCE_TYPE_KTP
        )
    )
    await _put({u.image: u for u in fresh.uploads}[image], good[image])
    confirmed = await stub.ConfirmSubmission(
        S.ConfirmSubmissionRequest(correlation_id=correlation_id)
    )
    assert confirmed.state == S.SUBMISSION_STATE_QUEUED
    assert await Worker("s3-worker", core.queue, core.bucket, core.matcher).run_once()
    details = await stub.GetSubmission(S.GetSubmissionRequest(correlation_id=correlation_id))
    assert details.submission.state == S.SUBMISSION_STATE_COMPLETED
    await grpc_channel.close()


async def test_confirm_names_every_refused_image(service, s3) -> None:
    _, client = s3
    grpc_channel = channel(service, "org_s3")
    stub = submissions_pb2_grpc.SubmissionServiceStub(grpc_channel)
    submission_id = await _upload_both(stub, "both-bad", b"not a selfie", _truncated_jpeg())
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id="both-bad"))
    info = error_info(status_from_rpc_error(exc.value))
    assert info is not None and info.reason == "IMAGE_UNDECODABLE"
    assert (info.metadata["image"], info.metadata["refused"]) == ("selfie", "selfie,reference")
    assert _stored(client, submission_id) == set()
    await grpc_channel.close()


async def test_good_uploads_are_confirmed_and_kept(service, s3) -> None:
    _, client = s3
    grpc_channel = channel(service, "org_s3")
    stub = submissions_pb2_grpc.SubmissionServiceStub(grpc_channel)
    submission_id = await _upload_both(stub, "good-1", SELFIE, REFERENCE)
    confirmed = await stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id="good-1"))
    assert confirmed.state == S.SUBMISSION_STATE_QUEUED
    assert _stored(client, submission_id) == {"selfie", "reference"}
    await grpc_channel.close()


def sigv4_store_accepts(url: str, headers: dict[str, str], secret: str = "testing") -> bool:
    """What a store that verifies SigV4 presigned URLs (AWS S3, MinIO, Ceph)
    decides about a PUT of `url` carrying `headers`: the canonical request is
    rebuilt from the headers the URL names in X-Amz-SignedHeaders, with the
    values the request carries, and its signature compared. moto does not
    verify presigned signatures, so the tests ask this instead."""
    unsigned, _, given = url.rpartition("&X-Amz-Signature=")
    parts = urlsplit(unsigned)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    sent = {name.lower(): value.strip() for name, value in headers.items()}
    sent["host"] = parts.netloc
    names = query["X-Amz-SignedHeaders"].split(";")
    canonical = "\n".join(
        [
            "PUT",
            parts.path,
            "&".join(
                sorted(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in query.items())
            ),
            "".join(f"{name}:{sent.get(name, '')}\n" for name in names),
            ";".join(names),
            "UNSIGNED-PAYLOAD",
        ]
    )
    scope = query["X-Amz-Credential"].split("/", 1)[1]
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", query["X-Amz-Date"], scope, sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{secret}".encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), sha256).digest()
    return hmac.compare_digest(hmac.new(key, to_sign.encode(), sha256).hexdigest(), given)


async def test_presigned_puts_require_server_side_encryption(service, s3) -> None:
    """Each upload URL signs x-amz-server-side-encryption: AES256 and the
    create response names it among the headers to send; a PUT without it, or
    asking for other encryption, fails the signature; the object the partner
    writes with the returned headers is encrypted by the store."""
    _, client = s3
    grpc_channel = channel(service, "org_s3")
    stub = submissions_pb2_grpc.SubmissionServiceStub(grpc_channel)
    created = await stub.CreateSubmission(
        S.CreateSubmissionRequest(correlation_id="s3-sse", reference_type=S.REFERENCE_TYPE_KTP)
    )
    for upload in created.uploads:
        assert dict(upload.headers) == {
            "Content-Type": "image/jpeg",
            "x-amz-server-side-encryption": "AES256",
        }
        signed = parse_qs(urlsplit(upload.url).query)["X-Amz-SignedHeaders"][0].split(";")
        assert "x-amz-server-side-encryption" in signed
        headers = dict(upload.headers)
        assert sigv4_store_accepts(upload.url, headers)
        without = {k: v for k, v in headers.items() if k != "x-amz-server-side-encryption"}
        assert not sigv4_store_accepts(upload.url, without)
        assert not sigv4_store_accepts(
            upload.url, {**headers, "x-amz-server-side-encryption": "aws:kms"}
        )
        assert not sigv4_store_accepts(upload.url, {**headers, "Content-Type": "text/plain"})
    uploads = {u.image: u for u in created.uploads}
    await _put(uploads["selfie"], SELFIE)
    await _put(uploads["reference"], REFERENCE)
    for image in ("selfie", "reference"):
        head = client.head_object(Bucket=BUCKET, Key=f"{created.submission_id}/{image}")
        assert head["ServerSideEncryption"] == "AES256"
    confirmed = await stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id="s3-sse"))
    assert confirmed.state == S.SUBMISSION_STATE_QUEUED
    await grpc_channel.close()


def test_aws_kms_encryption_signs_the_key_id_too() -> None:
    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    store = S3Store(client, BUCKET, 1000, "aws:kms", "arn:aws:kms:ap-southeast-3:1:key/k1")
    url = store.presign("fms_abcdefgh12345678/selfie", 60)
    headers = store.upload_headers()
    assert headers == {
        "Content-Type": "image/jpeg",
        "x-amz-server-side-encryption": "aws:kms",
        "x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:ap-southeast-3:1:key/k1",
    }
    assert sigv4_store_accepts(url, headers)
    assert not sigv4_store_accepts(
        url, {**headers, "x-amz-server-side-encryption-aws-kms-key-id": "attacker-key"}
    )
    assert not sigv4_store_accepts(url, {**headers, "x-amz-server-side-encryption": "AES256"})
    with pytest.raises(ValueError, match="AES256 or aws:kms"):
        S3Store(client, BUCKET, 1000, "none")
