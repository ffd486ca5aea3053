"""face-match with an S3-compatible store: moto's standalone S3 server on this
machine (the only S3-protocol server installable here offline), real HTTP,
real SigV4 presigned PUTs. What moto does not prove (it does not enforce
presigned signatures, expiry or content types like a real store; no IAM,
encryption, region endpoints): docs/face-match.md."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import grpc
import httpx
import pytest
from moto.server import ThreadedMotoServer

from identity_platform_api.face_match.v1 import submissions_pb2 as S
from identity_platform_api.face_match.v1 import submissions_pb2_grpc
from services.face_match.service import SPEC as FACE_MATCH
from services.face_match.worker import Worker, purge_images
from tests.support import TESTDATA, channel, start_service
from tests.support.biometrics import FACES
from tests.support.face_match import env

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


async def test_an_object_over_the_limit_fails_the_submission(service, s3) -> None:
    _, client = s3
    grpc_channel = channel(service, "org_s3")
    stub = submissions_pb2_grpc.SubmissionServiceStub(grpc_channel)
    created = await stub.CreateSubmission(
        S.CreateSubmissionRequest(correlation_id="s3-2", reference_type=S.REFERENCE_TYPE_OTHER)
    )
    # S3 cannot bound a presigned PUT's size: the partner wrote 2 MB + 1.
    client.put_object(
        Bucket=BUCKET, Key=f"{created.submission_id}/selfie", Body=b"\xff" * 2_000_001
    )
    client.put_object(Bucket=BUCKET, Key=f"{created.submission_id}/reference", Body=REFERENCE)
    await stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id="s3-2"))
    core = service.core
    assert await Worker("s3-worker", core.queue, core.bucket, core.matcher).run_once()
    status = await stub.GetSubmissionStatus(S.GetSubmissionStatusRequest(correlation_id="s3-2"))
    assert (status.state, status.failure_reason) == (S.SUBMISSION_STATE_FAILED, "IMAGE_TOO_LARGE")
    await grpc_channel.close()
