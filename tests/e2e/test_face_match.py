"""Face Match end to end: the real gateway in front of the real mesh on
PostgreSQL, an OAuth client-credential token, presigned uploads through the
gateway's bucket route, the service's own worker, and a local callback
receiver that verifies the HMAC signature of every callback."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from identity_runtime import mesh
from services.face_match.bucket import UploadSigner
from services.face_match.models import Job, Transition
from services.face_match.queue import JobQueue
from services.face_match.worker import Worker
from tests.support import TESTDATA
from tests.support.biometrics import FACES
from tests.support.face_match import CallbackReceiver
from tests.support.gateway import assert_error, assert_token_error, bearer, create_org_and_key
from tests.support.mesh import E2eMesh, running_mesh

SELFIE = (FACES / "img2.jpg").read_bytes()
REFERENCE = (TESTDATA / "ktp" / "ktp_flat.png").read_bytes()
# Generous bound on waiting for a callback: the worker and relay poll every 0.5 s.
CALLBACK_WAIT_SECONDS = 60
LOOPBACK_CALLBACKS = {"FACE_MATCH_CALLBACK_ALLOW_LOOPBACK": "true"}


def local(url: str) -> str:
    """A presigned URL's path and query (the test talks to the gateway in-process)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


@pytest.fixture
async def e2e(tmp_path: Path):
    # As `identity up` runs it: callbacks may reach the local receiver (loopback).
    async with running_mesh(tmp_path, extra_env=LOOPBACK_CALLBACKS) as running:
        yield running


def face_match_core(e2e: E2eMesh):
    return e2e.servers[mesh.FACE_MATCH.package].core


async def token_for(e2e: E2eMesh, org_name: str) -> tuple[str, str]:
    """(org_id, access token) of a new organisation's OAuth client."""
    org_id, token, _ = await token_and_key(e2e, org_name)
    return org_id, token


async def token_and_key(e2e: E2eMesh, org_name: str) -> tuple[str, str, str]:
    """(org_id, access token, internal API key) of a new organisation."""
    org_id, _, key = create_org_and_key(e2e.database_url, org_name, ("public", "internal"))
    made = await e2e.client.post(
        "/api/oauth/clients", json={"name": "backend"}, headers=bearer(key)
    )
    assert made.status_code == 200, made.text
    client = made.json()
    issued = await e2e.client.post(
        "/api/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": client["client"]["clientId"],
            "client_secret": client["clientSecret"],
        },
    )
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    return org_id, body["access_token"], key


async def create(e2e: E2eMesh, token: str, correlation_id: str, **extra) -> dict:
    response = await e2e.client.post(
        "/api/face-match/submissions",
        json={"correlationId": correlation_id, "referenceType": "REFERENCE_TYPE_KTP", **extra},
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text
    return response.json()


async def upload(e2e: E2eMesh, created: dict, selfie: bytes, reference: bytes) -> None:
    urls = {u["image"]: u for u in created["uploads"]}
    for image, data, media in (
        ("selfie", selfie, "image/jpeg"),
        ("reference", reference, "image/png"),
    ):
        response = await e2e.client.put(
            local(urls[image]["url"]), content=data, headers={"Content-Type": media}
        )
        assert response.status_code == 200, response.text


async def test_whole_flow_with_a_token_and_a_signed_callback(e2e) -> None:
    _, token, internal_key = await token_and_key(e2e, "Partner FM")
    receiver = await CallbackReceiver().start()
    try:
        created = await create(e2e, token, "loan-1", callbackUrl=receiver.url)
        receiver.secret = created["callbackSigningSecret"]
        assert created["state"] == "SUBMISSION_STATE_AWAITING_UPLOAD"
        # The same parameters (a retry): the same submission (probe3 finding 10).
        again = await create(e2e, token, "loan-1", callbackUrl=receiver.url)
        assert again["submissionId"] == created["submissionId"]
        await upload(e2e, created, SELFIE, REFERENCE)
        confirmed = await e2e.client.post(
            "/api/face-match/submissions/loan-1/confirm", json={}, headers=bearer(token)
        )
        assert confirmed.json()["state"] == "SUBMISSION_STATE_QUEUED", confirmed.text
        await asyncio.wait_for(receiver.arrived.wait(), CALLBACK_WAIT_SECONDS)
        [(event, signed)] = receiver.received
        assert signed, "the callback's HMAC signature must verify"
        assert event["correlationId"] == "loan-1" and event["state"] == "COMPLETED"
        status = await e2e.client.get(
            "/api/face-match/submissions/loan-1/status", headers=bearer(token)
        )
        assert status.json()["state"] == "SUBMISSION_STATE_COMPLETED"
        details = (
            await e2e.client.get("/api/face-match/submissions/loan-1", headers=bearer(token))
        ).json()["submission"]
        assert details["decision"] in ("DECISION_MATCH", "DECISION_REVIEW")
        assert event["decision"] == details["decision"].removeprefix("DECISION_")
        assert details["similarity"] > 0.4 and details["referencePortrait"]["width"] > 0
        assert [q["image"] for q in details["quality"]] == ["selfie", "reference"]
        # Every transition is in the audit chain, under the organisation. The
        # background loops are stopped first (a round in flight finishes), then
        # whatever is left is appended here.
        core = face_match_core(e2e)
        core._stop.set()
        await asyncio.gather(*core._tasks, return_exceptions=True)
        await core.audit.flush()
        log = await e2e.client.get(
            "/api/identity/audit-log",
            params={"subject": f"face_match_submission:{created['submissionId']}"},
            headers=bearer(internal_key),
        )
        assert log.status_code == 200, log.text
        actions = sorted(entry["action"] for entry in log.json()["entries"])
        assert actions == sorted(
            f"face_match.{state}"
            for state in ("created", "awaiting_upload", "queued", "processing", "completed")
        )
    finally:
        await receiver.stop()


async def test_bad_input_through_the_gateway(e2e) -> None:
    _, token = await token_for(e2e, "Partner Bad")
    _, other_token = await token_for(e2e, "Partner Other")
    created = await create(e2e, token, "bad-1")
    urls = {u["image"]: u["url"] for u in created["uploads"]}
    selfie_url = local(urls["selfie"])
    path, query = selfie_url.split("?")
    tampered = selfie_url[:-1] + ("0" if selfie_url[-1] != "0" else "1")
    key = path.removeprefix("/api/face-match/uploads/")
    past = int((datetime.now(UTC) - timedelta(seconds=5)).timestamp())
    expired = local(UploadSigner(_upload_key(e2e), "http://x", 1).presign(key, past).url)
    jpeg = {"Content-Type": "image/jpeg"}
    cases = [
        (tampered, SELFIE, jpeg, 403, "UPLOAD_URL_INVALID"),
        (expired, SELFIE, jpeg, 403, "UPLOAD_URL_EXPIRED"),
        (selfie_url, SELFIE, {"Content-Type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        (selfie_url, b"\xff" * (8_388_608 + 1), jpeg, 413, "PAYLOAD_TOO_LARGE"),
    ]
    for url, data, headers, status, reason in cases:
        response = await e2e.client.put(url, content=data, headers=headers)
        assert_error(response, status, reason)
    # Confirming before both uploads: 409.
    confirm = await e2e.client.post(
        "/api/face-match/submissions/bad-1/confirm", json={}, headers=bearer(token)
    )
    assert assert_error(confirm, 409, "UPLOADS_INCOMPLETE")["metadata"]["missing"] == (
        "selfie,reference"
    )
    # Unknown, and another organisation's: 404 alike.
    for who, correlation_id in ((token, "never-made"), (other_token, "bad-1")):
        for method, path_ in (
            ("GET", f"/api/face-match/submissions/{correlation_id}"),
            ("GET", f"/api/face-match/submissions/{correlation_id}/status"),
            ("POST", f"/api/face-match/submissions/{correlation_id}/confirm"),
        ):
            response = await e2e.client.request(
                method, path_, headers=bearer(who), **({"json": {}} if method == "POST" else {})
            )
            assert_error(response, 404, "SUBMISSION_NOT_FOUND")
    # A token that does not verify: 401.
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    response = await e2e.client.get("/api/face-match/submissions/bad-1", headers=bearer(forged))
    assert_error(response, 401, "ACCESS_TOKEN_INVALID")
    # Not an image (JPEG magic, then text): refused at confirm, naming the
    # image; the submission awaits a new upload of it.
    broken = await create(e2e, token, "bad-2")
    await upload(e2e, broken, b"\xff\xd8\xff not a JPEG at all", REFERENCE)
    confirm = await e2e.client.post(
        "/api/face-match/submissions/bad-2/confirm", json={}, headers=bearer(token)
    )
    assert assert_error(confirm, 400, "IMAGE_UNDECODABLE")["metadata"]["image"] == "selfie"
    status = (
        await e2e.client.get("/api/face-match/submissions/bad-2/status", headers=bearer(token))
    ).json()
    assert status["state"] == "SUBMISSION_STATE_AWAITING_UPLOAD"
    again = await e2e.client.post(
        "/api/face-match/submissions/bad-2/confirm", json={}, headers=bearer(token)
    )
    assert assert_error(again, 409, "UPLOADS_INCOMPLETE")["metadata"]["missing"] == "selfie"


def _upload_key(e2e: E2eMesh) -> str:
    return face_match_core(e2e).submissions.signer._key.decode()


async def test_an_api_key_works_too(e2e) -> None:
    _, _, key = create_org_and_key(e2e.database_url, "Partner Key", ("public",))
    response = await e2e.client.post(
        "/api/face-match/submissions",
        json={"correlationId": "k-1", "referenceType": "REFERENCE_TYPE_PASSPORT"},
        headers=bearer(key),
    )
    assert response.status_code == 200, response.text
    # Minting OAuth clients needs the internal scope.
    response = await e2e.client.post("/api/oauth/clients", json={"name": "x"}, headers=bearer(key))
    assert_error(response, 403, "SCOPE_INSUFFICIENT")


DYING_WORKER = """
import os, sys, asyncio
from identity_store.db import Database
from services.face_match.queue import JobQueue
from identity_store.types import utcnow

async def main():
    queue = JobQueue(Database(sys.argv[1]), clock=utcnow, visibility_seconds=30,
                     max_attempts=3, image_retention_days=1)
    lease = await queue.lease("doomed")
    print(lease.job_id if lease else "", flush=True)
    os.kill(os.getpid(), 9)  # killed mid-job: leased, never completed

asyncio.run(main())
"""


async def test_a_worker_killed_mid_job_and_two_workers_draining_one_queue(e2e) -> None:
    _, token = await token_for(e2e, "Partner Queue")
    core = face_match_core(e2e)
    # Stop the service's own worker so the test decides who leases.
    core._stop.set()
    await asyncio.gather(*core._tasks, return_exceptions=True)

    names = [f"q-{i}" for i in range(6)]
    for name in names:
        created = await create(e2e, token, name)
        await upload(e2e, created, SELFIE, REFERENCE)
        await e2e.client.post(
            f"/api/face-match/submissions/{name}/confirm", json={}, headers=bearer(token)
        )

    # A real process leases a job and is killed with SIGKILL before finishing it.
    died = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        DYING_WORKER,
        e2e.database_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await died.communicate()
    assert died.returncode == -9, err.decode()
    doomed_job = out.decode().strip()
    assert doomed_job

    # Two workers drain the queue at once, with clocks past the dead worker's visibility timeout.
    later = lambda: datetime.now(UTC) + timedelta(seconds=31)  # noqa: E731
    workers = [
        Worker(
            f"drain-{i}",
            JobQueue(
                core.database,
                clock=later,
                visibility_seconds=30,
                max_attempts=3,
                image_retention_days=1,
            ),
            core.bucket,
            core.matcher,
        )
        for i in range(2)
    ]

    async def drain(worker: Worker) -> None:
        while await worker.run_once():
            pass

    await asyncio.gather(*(drain(w) for w in workers))
    assert sum(w.completed for w in workers) == len(names)

    def facts(session):
        completed = session.execute(
            select(Transition.submission_id, func.count())
            .where(Transition.to_state == "COMPLETED")
            .group_by(Transition.submission_id)
        ).all()
        jobs = session.execute(select(Job.job_id, Job.state, Job.attempt_count)).all()
        return completed, jobs

    completed, jobs = await core.database.run(facts)
    assert len(completed) == len(names) and all(count == 1 for _, count in completed)
    assert {state for _, state, _ in jobs} == {"done"}
    attempts = {job_id: n for job_id, _, n in jobs}
    assert attempts[doomed_job] == 2  # leased by the dead worker, then once more
    assert all(n == 1 for job_id, n in attempts.items() if job_id != doomed_job)


async def test_the_same_flow_against_an_s3_protocol_server(tmp_path: Path, monkeypatch) -> None:
    """Presigned PUTs go to moto's S3 server (real HTTP, SigV4), not the gateway."""
    import boto3
    import httpx
    from moto.server import ThreadedMotoServer

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
        Bucket="fm-e2e"
    )
    extra = {
        "FACE_MATCH_STORAGE": "s3",
        "FACE_MATCH_S3_BUCKET": "fm-e2e",
        "FACE_MATCH_S3_ENDPOINT_URL": endpoint,
        "FACE_MATCH_S3_REGION": "us-east-1",
        "FACE_MATCH_S3_PATH_STYLE": "true",
        **LOOPBACK_CALLBACKS,
    }
    try:
        async with running_mesh(tmp_path, extra_env=extra) as e2e:
            _, token = await token_for(e2e, "Partner S3")
            receiver = await CallbackReceiver().start()
            try:
                created = await create(e2e, token, "s3-loan", callbackUrl=receiver.url)
                receiver.secret = created["callbackSigningSecret"]
                async with httpx.AsyncClient() as http:
                    for upload, data in zip(created["uploads"], (SELFIE, REFERENCE), strict=True):
                        assert upload["url"].startswith(endpoint)
                        # The REST answer names the signed encryption header to send.
                        assert upload["headers"] == {
                            "Content-Type": "image/jpeg",
                            "x-amz-server-side-encryption": "AES256",
                        }
                        response = await http.put(
                            upload["url"], content=data, headers=upload["headers"]
                        )
                        assert response.status_code == 200, response.text
                confirmed = await e2e.client.post(
                    "/api/face-match/submissions/s3-loan/confirm", json={}, headers=bearer(token)
                )
                assert confirmed.json()["state"] == "SUBMISSION_STATE_QUEUED", confirmed.text
                await asyncio.wait_for(receiver.arrived.wait(), CALLBACK_WAIT_SECONDS)
                [(event, signed)] = receiver.received
                assert signed and event["state"] == "COMPLETED"
                details = (
                    await e2e.client.get(
                        "/api/face-match/submissions/s3-loan", headers=bearer(token)
                    )
                ).json()["submission"]
                assert details["decision"] in ("DECISION_MATCH", "DECISION_REVIEW")
            finally:
                await receiver.stop()
    finally:
        moto.stop()


async def test_the_token_route_takes_rfc_6749_form_requests_and_basic_auth(e2e) -> None:
    import base64

    _, _, key = await token_and_key(e2e, "Partner Form")
    made = (
        await e2e.client.post("/api/oauth/clients", json={"name": "form"}, headers=bearer(key))
    ).json()
    client_id, secret = made["client"]["clientId"], made["clientSecret"]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    in_body = await e2e.client.post(
        "/api/oauth/token",
        content=f"grant_type=client_credentials&client_id={client_id}&client_secret={secret}",
        headers=form,
    )
    with_basic = await e2e.client.post(
        "/api/oauth/token",
        content="grant_type=client_credentials",
        headers={**form, "Authorization": f"Basic {basic}"},
    )
    for response in (in_body, with_basic):
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        listed = await e2e.client.post(
            "/api/face-match/submissions",
            json={"correlationId": "form-1", "referenceType": "REFERENCE_TYPE_KTP"},
            headers=bearer(token),
        )
        assert listed.status_code == 200, listed.text
    wrong = base64.b64encode(f"{client_id}:nope".encode()).decode()
    refused = await e2e.client.post(
        "/api/oauth/token",
        content="grant_type=client_credentials",
        headers={**form, "Authorization": f"Basic {wrong}"},
    )
    assert_token_error(refused, 401, "invalid_client", "CLIENT_CREDENTIALS_INVALID")
    for body, headers in (
        ("grant_type=client_credentials&password=x", form),
        ("grant_type=client_credentials", {**form, "Authorization": "Basic !!!"}),
        (f"client_id={client_id}", {**form, "Authorization": f"Basic {basic}"}),
    ):
        response = await e2e.client.post("/api/oauth/token", content=body, headers=headers)
        assert_token_error(response, 400, "invalid_request", "MALFORMED_REQUEST")
    # Other routes still take JSON only.
    response = await e2e.client.post(
        "/api/face-match/submissions", content="correlationId=x", headers={**form, **bearer(key)}
    )
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
