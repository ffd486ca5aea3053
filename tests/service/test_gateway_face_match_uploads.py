"""Presigned Face Match uploads through the gateway: the URL is checked before
a byte of the body is read (black-box probe 3, finding 12: anyone could make
the gateway buffer 16 MiB before face-match looked at the signature), and no
value in the URL or the headers is a 500 (finding 4: an `expires` out of
int64 was). A real face-match server on SQLite and PostgreSQL, the real
gateway in front (in-process, and once on a real socket)."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlsplit

import grpc
import pytest
from sqlalchemy import update

from gateway import app as gateway_app
from gateway.server import start as start_gateway
from identity_platform_api.face_match.v1 import submissions_pb2, submissions_pb2_grpc
from identity_runtime.settings import SettingsError
from identity_runtime.status import error_info, status_from_rpc_error
from identity_store.db import Database
from services.face_match.bucket import UploadSigner, object_key
from services.face_match.models import Submission
from services.face_match.service import SPEC as FACE_MATCH
from tests.support import TESTDATA, channel, start_service
from tests.support.biometrics import FACES
from tests.support.face_match import UPLOAD_KEY, env, split_upload_url
from tests.support.gateway import (
    assert_documented,
    documented_upload_answers,
    gateway_client,
    gateway_settings,
)
from tests.support.gateway import assert_error as assert_error_only
from tests.support.meshauth import caller_metadata

ORG = "org_fm_uploads"
SELFIE = (FACES / "img2.jpg").read_bytes()
REFERENCE = (TESTDATA / "ktp" / "ktp_flat.png").read_bytes()
UPLOAD_MAX_BYTES = 3_000_000
# Under face-match's upload limit and the gateway's body limit: only the URL
# can refuse it.
DECLARED = 2_000_000
JPEG = {"Content-Type": "image/jpeg"}


@pytest.fixture
async def face_match(database_url: str, tmp_path: Path):
    server = await start_service(
        FACE_MATCH,
        env(database_url, tmp_path / "bucket", FACE_MATCH_UPLOAD_MAX_BYTES=str(UPLOAD_MAX_BYTES)),
    )
    yield server
    await server.stop(0)


@pytest.fixture
async def client(face_match):
    async with gateway_client(gateway_settings({"face_match": face_match.address})) as client:
        yield client


def local(url: str) -> str:
    """A presigned URL's path and query (the gateway is in-process)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def urls_of(face_match, correlation_id: str) -> dict[str, str]:
    created = await face_match.core.submissions.create(
        ORG, "api_key:key_up", correlation_id, "KTP", ""
    )
    return {upload.image: local(upload.url) for upload in created.uploads}


class Unread:
    """A request body the gateway must not read: pulling it is recorded, and
    fails (before the fix the gateway read it, and answered 500)."""

    def __init__(self) -> None:
        self.pulled = False

    async def __aiter__(self) -> Any:
        self.pulled = True
        raise AssertionError("the gateway read the body before checking the URL")
        yield b""  # an async generator


class Chunks:
    """A chunked body of `count` chunks of `size` bytes, counting those read."""

    def __init__(self, size: int, count: int) -> None:
        self.size, self.count, self.read = size, count, 0

    async def __aiter__(self) -> Any:
        for _ in range(self.count):
            self.read += 1
            yield b"\xff" * self.size


def as_gateway() -> list[tuple[str, str]]:
    """A caller token of the gateway calling as itself (a mesh caller, no organisation)."""
    return caller_metadata("", scopes=("mesh",), actor="service:gateway", issuer="gateway")


def stored(face_match, key: str) -> bytes | None:
    """The image an upload left in the bucket, opened (it is sealed at rest:
    the bytes on disk are never the image); None when nothing was written."""
    core = face_match.core
    sealed = core.bucket.get(key)
    if sealed is None:
        return None
    submission_id, image = key.split("/", 1)
    assert not sealed.startswith(b"\xff\xd8") and not sealed.startswith(b"\x89PNG")
    with core.database.transaction() as session:
        seal = core.bucket.seals.for_reading(session, ORG, submission_id)
    assert seal is not None
    return seal.open(image, sealed)


def assert_error(response: Any, status: int, reason: str) -> dict[str, Any]:
    """The refusal, and the OpenAPI document lists it for the upload route."""
    error = assert_error_only(response, status, reason)
    assert_documented(response)
    return error


def with_query(url: str, query: str) -> str:
    return url.split("?", 1)[0] + "?" + query


async def test_a_bad_url_is_refused_before_the_body_is_read(face_match, client) -> None:
    urls = await urls_of(face_match, "order-unread")
    selfie = urls["selfie"]
    key, expires, signature = split_upload_url("http://x" + selfie)
    tampered = ("0" if signature[0] != "0" else "1") + signature[1:]
    past = int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())
    expired = local(UploadSigner(UPLOAD_KEY, "http://x", 1).presign(key, past).url)
    declared = {**JPEG, "Content-Length": str(DECLARED)}
    cases = [
        # Refused by face-match's AuthorizeUpload.
        (
            with_query(selfie, f"expires={expires}&signature={tampered}"),
            declared,
            403,
            "UPLOAD_URL_INVALID",
        ),
        (
            with_query(selfie, f"expires={expires + 60}&signature={signature}"),
            declared,
            403,
            "UPLOAD_URL_INVALID",
        ),
        (expired, declared, 403, "UPLOAD_URL_EXPIRED"),
        (selfie, {**declared, "Content-Type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        (selfie, {**JPEG, "Content-Length": str(UPLOAD_MAX_BYTES + 1)}, 413, "PAYLOAD_TOO_LARGE"),
        # Refused by the gateway itself: no such URL can verify (finding 4:
        # an expiry out of int64 was a 500).
        (
            with_query(selfie, f"expires={'9' * 23}&signature={signature}"),
            declared,
            403,
            "UPLOAD_URL_INVALID",
        ),
        (
            with_query(selfie, f"expires=-{'9' * 23}&signature={signature}"),
            declared,
            403,
            "UPLOAD_URL_INVALID",
        ),
        (
            with_query(selfie, f"expires={2**63}&signature={signature}"),
            declared,
            403,
            "UPLOAD_URL_INVALID",
        ),
        (
            with_query(selfie, f"expires={-(2**63) - 1}&signature={signature}"),
            declared,
            403,
            "UPLOAD_URL_INVALID",
        ),
        (
            with_query(selfie, f"expires={'9' * 5000}&signature={signature}"),
            declared,
            403,
            "UPLOAD_URL_INVALID",
        ),
        (
            with_query(selfie, f"expires=abc&signature={signature}"),
            declared,
            403,
            "UPLOAD_URL_INVALID",
        ),
        (
            with_query(selfie, f"expires={expires}&signature={quote('é' * 64)}"),
            declared,
            403,
            "UPLOAD_URL_INVALID",
        ),
        (selfie.split("?", 1)[0], declared, 403, "UPLOAD_URL_INVALID"),
        # A Content-Length over the gateway's own limit (16 MiB), or not a number.
        (selfie, {**JPEG, "Content-Length": str(17 * 2**20)}, 413, "PAYLOAD_TOO_LARGE"),
        (selfie, {**JPEG, "Content-Length": "9" * 5000}, 413, "PAYLOAD_TOO_LARGE"),
        (selfie, {**JPEG, "Content-Length": "12a"}, 400, "MALFORMED_REQUEST"),
    ]
    for url, headers, status, reason in cases:
        body = Unread()
        response = await client.put(url, content=body, headers=headers)
        assert_error(response, status, reason)
        assert not body.pulled, (url[-40:], headers)
    assert stored(face_match, key) is None
    # A signature for an upload face-match never made: 404, unread too.
    signer = UploadSigner(UPLOAD_KEY, "http://x", 1)
    unknown = local(signer.presign(object_key("fms_unknown00000", "selfie"), expires).url)
    body = Unread()
    assert_error(
        await client.put(unknown, content=body, headers=declared), 404, "SUBMISSION_NOT_FOUND"
    )
    assert not body.pulled


async def test_an_expiry_out_of_int64_is_403_not_500(face_match, client) -> None:
    """The probe's reproduction: a whole image, an `expires` no int64 holds."""
    urls = await urls_of(face_match, "order-overflow")
    key, expires, signature = split_upload_url("http://x" + urls["selfie"])
    for bad in ("9" * 23, "-" + "9" * 23, str(2**63), str(-(2**63) - 1)):
        response = await client.put(
            with_query(urls["selfie"], f"expires={bad}&signature={signature}"),
            content=SELFIE,
            headers=JPEG,
        )
        assert_error(response, 403, "UPLOAD_URL_INVALID")
    assert stored(face_match, key) is None
    # The edges of int64 are a number like any other: a signature that does
    # not verify for them.
    for edge in (str(2**63 - 1), str(-(2**63))):
        response = await client.put(
            with_query(urls["selfie"], f"expires={edge}&signature={signature}"),
            content=SELFIE,
            headers=JPEG,
        )
        assert_error(response, 403, "UPLOAD_URL_INVALID")
    response = await client.put(urls["selfie"], content=SELFIE, headers=JPEG)
    assert response.status_code == 200, response.text


async def test_a_superscript_content_length_is_a_400(face_match, client) -> None:
    """str.isdigit takes "²" and int() then refuses it: a 500 on every route."""
    urls = await urls_of(face_match, "order-superscript")
    for url in (urls["selfie"], "/api/auth/login"):
        body = Unread()
        response = await client.request(
            "PUT" if "uploads" in url else "POST",
            url,
            content=body,
            headers=[(b"content-type", b"image/jpeg"), (b"content-length", "²".encode("latin-1"))],
        )
        assert_error(response, 400, "MALFORMED_REQUEST")
        assert not body.pulled


async def test_a_good_url_uploads_and_a_closed_or_expired_submission_is_refused_unread(
    database_url: str, face_match, client
) -> None:
    urls = await urls_of(face_match, "order-good")
    selfie_key = split_upload_url("http://x" + urls["selfie"])[0]
    reference_key = split_upload_url("http://x" + urls["reference"])[0]
    # With a Content-Length, and chunked.
    response = await client.put(urls["selfie"], content=SELFIE, headers=JPEG)
    assert response.status_code == 200, response.text
    assert response.json() == {"size": len(SELFIE)}

    async def chunked() -> Any:
        for start in range(0, len(REFERENCE), 65536):
            yield REFERENCE[start : start + 65536]

    response = await client.put(
        urls["reference"], content=chunked(), headers={"Content-Type": "image/png"}
    )
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 200, response.text
    assert response.json() == {"size": len(REFERENCE)}
    assert stored(face_match, selfie_key) == SELFIE
    assert stored(face_match, reference_key) == REFERENCE
    # Once confirmed, the same (still valid) URL is refused unread.
    await face_match.core.submissions.confirm(ORG, "api_key:key_up", "order-good")
    body = Unread()
    response = await client.put(
        urls["selfie"], content=body, headers={**JPEG, "Content-Length": str(DECLARED)}
    )
    assert_error(response, 409, "UPLOADS_CLOSED")
    assert not body.pulled
    # A submission past its expiry (the sweep has not run yet): refused unread.
    late = await urls_of(face_match, "order-late")
    database = Database(database_url)
    try:
        await database.run(
            lambda s: s.execute(
                update(Submission)
                .where(Submission.correlation_id == "order-late")
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        )
    finally:
        database.dispose()
    body = Unread()
    response = await client.put(
        late["selfie"], content=body, headers={**JPEG, "Content-Length": str(DECLARED)}
    )
    assert_error(response, 400, "SUBMISSION_EXPIRED")
    assert not body.pulled


async def test_a_chunked_body_is_read_only_up_to_face_matchs_limit(face_match, client) -> None:
    urls = await urls_of(face_match, "order-chunked")
    # 1 MiB chunks, up to 16 (the gateway's own limit): 3 are over face-match's 3 MB.
    body = Chunks(2**20, 16)
    response = await client.put(urls["selfie"], content=body, headers=JPEG)
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert body.read == 3
    assert stored(face_match, split_upload_url("http://x" + urls["selfie"])[0]) is None


async def stalled_request(
    address: str, method: str, target: str, media: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the gateway at `address` whose request declares
    DECLARED bytes of body, sends 10 of them and then nothing more."""
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"{method} {target} HTTP/1.1\r\nHost: gateway.test\r\nContent-Type: {media}\r\n"
        f"Content-Length: {DECLARED}\r\n\r\n".encode()
        + b"\xff" * 10
    )
    await writer.drain()
    return reader, writer


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], dict[str, Any]]:
    """(status, headers, JSON error) of a response read off a raw socket."""
    # Guards against a hang, not measures of time.
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=60)
    status_line, *lines = head.decode("latin-1").strip().split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines)
    }
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), timeout=60)
    return int(status_line.split(" ")[1]), headers, json.loads(body)


async def test_on_a_real_socket_a_body_that_never_comes_gets_its_403(face_match) -> None:
    """Headers declaring 2 MB, then 10 bytes and nothing more: the refusal
    comes without the body (before the fix the gateway waited for it)."""
    urls = await urls_of(face_match, "order-socket")
    key, expires, signature = split_upload_url("http://x" + urls["selfie"])
    tampered = ("0" if signature[0] != "0" else "1") + signature[1:]
    target = with_query(urls["selfie"], f"expires={expires}&signature={tampered}")
    running = await start_gateway(gateway_settings({"face_match": face_match.address}, port="0"))
    try:
        reader, writer = await stalled_request(running.address, "PUT", target, "image/jpeg")
        # A gateway waiting for the body fails the test (read_answer's guard).
        status, _, error = await read_answer(reader)
        assert status == 403, error
        assert error["error"]["reason"] == "UPLOAD_URL_INVALID"
        writer.close()
    finally:
        await running.stop()
    assert stored(face_match, key) is None


def _refusal(exc: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> tuple[str, str]:
    info = error_info(status_from_rpc_error(exc.value))
    return exc.value.code().name, info.reason if info else ""


async def test_authorize_upload_is_mesh_only_and_checks_without_writing(face_match) -> None:
    urls = await urls_of(face_match, "order-authorize")
    key, expires, signature = split_upload_url("http://x" + urls["selfie"])
    tampered = ("0" if signature[0] != "0" else "1") + signature[1:]
    async with channel(face_match, ORG) as ch:
        stub = submissions_pb2_grpc.SubmissionServiceStub(ch)

        async def authorize(metadata: list[tuple[str, str]], **fields: Any) -> Any:
            request = {
                "object_key": key,
                "expires": expires,
                "signature": signature,
                "content_type": "image/jpeg",
                **fields,
            }
            return await stub.AuthorizeUpload(
                submissions_pb2.AuthorizeUploadRequest(**request), metadata=metadata
            )

        assert (await authorize(as_gateway())).max_bytes == UPLOAD_MAX_BYTES
        answer = await authorize(as_gateway(), declared_size=DECLARED)
        assert answer.max_bytes == UPLOAD_MAX_BYTES
        cases = [
            ({"signature": tampered}, ("PERMISSION_DENIED", "UPLOAD_URL_INVALID")),
            ({"signature": "é" * 64}, ("PERMISSION_DENIED", "UPLOAD_URL_INVALID")),
            ({"content_type": "text/plain"}, ("INVALID_ARGUMENT", "UNSUPPORTED_MEDIA_TYPE")),
            (
                {"declared_size": UPLOAD_MAX_BYTES + 1},
                ("RESOURCE_EXHAUSTED", "PAYLOAD_TOO_LARGE"),
            ),
        ]
        for fields, expected in cases:
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await authorize(as_gateway(), **fields)
            assert _refusal(exc) == expected, fields
        # A partner's token (any scope but "mesh") does not open it.
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await authorize(caller_metadata(ORG, scopes=("public", "internal"), issuer="gateway"))
        assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # PutObject refuses a signature that is not ASCII as a bad one (a 500 before).
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await stub.PutObject(
                submissions_pb2.PutObjectRequest(
                    object_key=key,
                    expires=expires,
                    signature="é" * 64,
                    content_type="image/jpeg",
                    data=SELFIE,
                ),
                metadata=as_gateway(),
            )
        assert _refusal(exc) == ("PERMISSION_DENIED", "UPLOAD_URL_INVALID")
    assert stored(face_match, key) is None
    view = await face_match.core.submissions.status(ORG, "order-authorize")
    assert view.state == "AWAITING_UPLOAD"


async def test_content_length_with_transfer_encoding_is_refused_on_a_real_socket(
    face_match,
) -> None:
    """The re-probe (N5): Content-Length 5 with a chunked body was taken (the
    server frames by Transfer-Encoding) and 2,000 bytes were stored although
    AuthorizeUpload was asked about 5; a proxy framing by Content-Length would
    read another request there. Both headers together are a 400, on an upload
    and on a JSON route, and nothing is stored."""
    urls = await urls_of(face_match, "order-smuggle")
    key = split_upload_url("http://x" + urls["selfie"])[0]
    running = await start_gateway(gateway_settings({"face_match": face_match.address}, port="0"))
    chunk = b"\xff" * 2000
    body = b"%x\r\n" % len(chunk) + chunk + b"\r\n0\r\n\r\n"
    try:
        host, port = running.address.rsplit(":", 1)
        for method, target, media in (
            ("PUT", urls["selfie"], "image/jpeg"),
            ("POST", "/api/auth/login", "application/json"),
        ):
            reader, writer = await asyncio.open_connection(host, int(port))
            head = (
                f"{method} {target} HTTP/1.1\r\nHost: gateway.test\r\nContent-Type: {media}\r\n"
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
            # A guard against a hang, not a measure of time.
            answer = await asyncio.wait_for(reader.read(), timeout=60)
            status, _, payload = answer.partition(b"\r\n\r\n")
            assert status.split(b" ")[1] == b"400", status
            assert json.loads(payload)["error"]["reason"] == "MALFORMED_REQUEST"
            writer.close()
    finally:
        await running.stop()
    assert stored(face_match, key) is None


async def test_a_body_sent_too_slowly_is_a_408_and_nothing_is_stored(face_match) -> None:
    """A valid upload URL, headers declaring 2 MB, 10 bytes, then nothing (a
    client holding the connection): 408 REQUEST_BODY_TIMEOUT once the
    body-read timeout passes, the connection closed, nothing stored (before
    the fix the gateway waited as long as the client kept the connection).
    The same on a JSON route."""
    urls = await urls_of(face_match, "order-slow")
    key = split_upload_url("http://x" + urls["selfie"])[0]
    settings = gateway_settings(
        {"face_match": face_match.address}, port="0", body_read_timeout_seconds="0.2"
    )
    running = await start_gateway(settings)
    try:
        for method, target, media in (
            ("PUT", urls["selfie"], "image/jpeg"),
            ("POST", "/api/auth/login", "application/json"),
        ):
            reader, writer = await stalled_request(running.address, method, target, media)
            status, headers, error = await read_answer(reader)
            assert status == 408, error
            assert error["error"]["reason"] == "REQUEST_BODY_TIMEOUT"
            assert error["error"]["status"] == "DEADLINE_EXCEEDED"
            assert error["error"]["metadata"] == {"timeout_seconds": "0.2"}
            if method == "PUT":
                assert (408, "REQUEST_BODY_TIMEOUT") in documented_upload_answers()
            assert headers["connection"] == "close"
            # The gateway closes the connection: the rest of the body goes nowhere.
            assert await asyncio.wait_for(reader.read(), timeout=60) == b""
            writer.close()
    finally:
        await running.stop()
    assert stored(face_match, key) is None
    view = await face_match.core.submissions.status(ORG, "order-slow")
    assert view.state == "AWAITING_UPLOAD"


async def test_a_client_that_leaves_mid_body_is_no_server_error(face_match, monkeypatch) -> None:
    """Black-box probe 6, D2: a client closing the connection mid-body (a phone
    losing its network mid-upload) was logged as an unhandled error and a
    500, on anonymous routes too, counting against the 5xx SLO. It is the
    body timeout's 408 (answered to nobody), nothing stored."""
    records: list[dict[str, Any]] = []
    all_logged = asyncio.Event()

    def keep(event: str, **fields: Any) -> None:
        records.append(fields)
        if len(records) == 3:
            all_logged.set()

    monkeypatch.setattr(
        gateway_app, "access_log", SimpleNamespace(info=keep, warning=keep, error=keep)
    )
    unhandled: list[Any] = []
    monkeypatch.setattr(gateway_app.log, "exception", lambda *a, **k: unhandled.append(a))
    urls = await urls_of(face_match, "order-gone")
    key = split_upload_url("http://x" + urls["selfie"])[0]
    running = await start_gateway(gateway_settings({"face_match": face_match.address}, port="0"))
    try:
        for method, target, media in (
            ("PUT", urls["selfie"], "image/jpeg"),
            ("POST", "/api/auth/login", "application/json"),
            ("POST", "/api/oauth/token", "application/json"),
        ):
            _, writer = await stalled_request(running.address, method, target, media)
            writer.close()
            await writer.wait_closed()
        # A guard against a hang, not a measure of time.
        await asyncio.wait_for(all_logged.wait(), timeout=60)
    finally:
        await running.stop()
    assert unhandled == []
    assert [(r["status"], r["reason"]) for r in records] == [(408, "REQUEST_BODY_TIMEOUT")] * 3
    # Each under its route template, an upload too (re-probe 6: "", as for an
    # unmatched path), never its path (it holds a submission id).
    assert sorted(r["route"] for r in records) == [
        "/api/auth/login",
        "/api/face-match/uploads/{submissionId}/{image}",
        "/api/oauth/token",
    ]
    assert stored(face_match, key) is None


def test_the_body_read_timeout_must_be_positive() -> None:
    for bad in ("0", "-1"):
        with pytest.raises(SettingsError) as refused:
            gateway_settings({}, body_read_timeout_seconds=bad)
        assert "BODY_READ_TIMEOUT_SECONDS" in str(refused.value)


async def test_an_upload_with_a_content_encoding_is_refused_unread(face_match, client) -> None:
    """A gzip body was stored as if it were the image (black-box probe): any
    Content-Encoding but identity is 415 UNSUPPORTED_CONTENT_ENCODING, the
    body unread and nothing stored; identity (or none) uploads."""
    urls = await urls_of(face_match, "order-encoded")
    key = split_upload_url("http://x" + urls["selfie"])[0]
    for encoding in ("gzip", "br", "identity, gzip", "x-unknown"):
        body = Unread()
        response = await client.put(
            urls["selfie"],
            content=body,
            headers={**JPEG, "Content-Length": str(DECLARED), "Content-Encoding": encoding},
        )
        error = assert_error(response, 415, "UNSUPPORTED_CONTENT_ENCODING")
        assert error["metadata"] == {"accepted": "identity"}
        assert response.headers["accept-encoding"] == "identity"
        assert not body.pulled, encoding
    assert stored(face_match, key) is None
    response = await client.put(
        urls["selfie"], content=SELFIE, headers={**JPEG, "Content-Encoding": "identity"}
    )
    assert response.status_code == 200, response.text
    assert stored(face_match, key) == SELFIE
    response = await client.put(
        urls["reference"], content=REFERENCE, headers={"Content-Type": "image/png"}
    )
    assert response.status_code == 200, response.text


async def test_an_empty_upload_and_other_methods_are_refused_as_documented(
    face_match, client
) -> None:
    urls = await urls_of(face_match, "order-empty")
    key = split_upload_url("http://x" + urls["selfie"])[0]
    assert_error(await client.put(urls["selfie"], content=b"", headers=JPEG), 400, "IMAGE_EMPTY")
    for method in ("GET", "POST"):
        response = await client.request(method, urls["selfie"], content=SELFIE, headers=JPEG)
        assert_error_only(response, 405, "METHOD_NOT_ALLOWED")
        assert response.headers["allow"] == "PUT"
    assert stored(face_match, key) is None


async def test_the_openapi_document_describes_the_upload_route(face_match, client) -> None:
    """The route partners call after CreateSubmission is in the served
    document (black-box probe 6, D6): no credential but the URL, its path and
    query parameters, the image types it takes, and 200 `{"size": N}`."""
    document = (await client.get("/api/openapi.json")).json()
    operation = document["paths"]["/api/face-match/uploads/{submissionId}/{image}"]["put"]
    assert operation["security"] == []
    parameters = {p["name"]: p for p in operation["parameters"] if "name" in p}
    assert {(name, p["in"]) for name, p in parameters.items()} == {
        ("submissionId", "path"),
        ("image", "path"),
        ("expires", "query"),
        ("signature", "query"),
    }
    assert parameters["image"]["schema"]["enum"] == ["selfie", "reference"]
    assert set(operation["requestBody"]["content"]) == {"image/jpeg", "image/png", "image/webp"}
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["required"] == ["size"]
    urls = await urls_of(face_match, "order-documented")
    # The URL face-match presigns matches the documented path and parameters.
    path, query = urls["reference"].split("?", 1)
    submission, image = path.removeprefix("/api/face-match/uploads/").split("/")
    assert re.fullmatch(parameters["submissionId"]["schema"]["pattern"], submission)
    assert image in parameters["image"]["schema"]["enum"]
    assert sorted(part.split("=")[0] for part in query.split("&")) == ["expires", "signature"]
    response = await client.put(
        urls["reference"], content=REFERENCE, headers={"Content-Type": "image/png"}
    )
    assert response.status_code == 200, response.text
    assert set(response.json()) == set(ok["properties"])
    reasons = {reason for _, reason in documented_upload_answers()}
    for reason in ("UPLOAD_URL_INVALID", "UPLOAD_URL_EXPIRED", "UPLOADS_CLOSED"):
        assert reason in reasons
    # Not the partner's credentials: nothing an API key refusal would answer.
    assert "API_KEY_MISSING" not in reasons and "INVALID_FIELD" not in reasons
