"""Helpers of the Face Match tests: settings, documents with a ghost portrait,
uploads through the mesh, a callback receiver that verifies signatures."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.server import bind_socket
from identity_crypto.keyring import generate
from identity_runtime import meshtls
from identity_runtime.signing import verify_headers
from services.face_match.oauth import SigningKeys
from tests.support.biometrics import FACES, jpeg, photo

UPLOAD_KEY = "u" * 40
CALLBACK_KEY = "c" * 40
PEPPER = "p" * 40
SIGNING_KEYS = SigningKeys.generate("fm-test-1")
# The key-encryption keys of the sealed images (services/face_match/sealing.py).
KEK_KEYRING = generate("kek-fm-test")


def env(database_url: str, bucket: Path, **extra: str) -> dict[str, str]:
    values = {
        "FACE_MATCH_DATABASE_URL": database_url,
        "FACE_MATCH_BUCKET_DIR": str(bucket),
        "FACE_MATCH_UPLOAD_SIGNING_KEY": UPLOAD_KEY,
        "FACE_MATCH_CALLBACK_SIGNING_KEY": CALLBACK_KEY,
        "FACE_MATCH_OAUTH_CLIENT_PEPPER": PEPPER,
        "FACE_MATCH_OAUTH_SIGNING_KEYS": SIGNING_KEYS,
        "FACE_MATCH_KEK_KEYRING": KEK_KEYRING.to_json(),
        "FACE_MATCH_WORKERS": "0",
        "FACE_MATCH_INTRA_OP_THREADS": "1",
    }
    values.update(extra)
    return values


def split_upload_url(url: str) -> tuple[str, int, str]:
    """(object key, expires, signature) of a presigned URL."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    key = parts.path.split("/api/face-match/uploads/", 1)[1]
    return key, int(query["expires"][0]), query["signature"][0]


def document(portrait: np.ndarray, ghost: np.ndarray) -> bytes:
    """An ID-document-like card: the holder's portrait on the left, a smaller,
    faded greyscale "ghost" portrait on the right, text-like bars between."""
    card = np.full((640, 1010, 3), (214, 200, 180), dtype=np.uint8)
    main = cv2.resize(portrait, (300, 380), interpolation=cv2.INTER_AREA)
    card[150:530, 40:340] = main
    small = cv2.cvtColor(
        cv2.cvtColor(
            cv2.resize(ghost, (130, 165), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY
        ),
        cv2.COLOR_GRAY2BGR,
    )
    faded = cv2.addWeighted(small, 0.6, np.full_like(small, 230), 0.4, 0)
    card[300:465, 840:970] = faded
    for row in range(6):
        y = 180 + row * 50
        cv2.rectangle(card, (380, y), (780, y + 18), (70, 60, 50), -1)
    return jpeg(card, 92)


def receiver_tls(directory: Path) -> Path:
    """A test CA (ca.pem) and a certificate it issued for 127.0.0.1 (cert.pem,
    key.pem) in `directory`; the CA is in no trust store."""
    ca_cert, ca_key = meshtls.new_ca("face-match callback test CA")
    cert, key = meshtls.issue(ca_cert, ca_key, "callback-receiver", ["127.0.0.1"])
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.pem").write_bytes(ca_cert)
    (directory / "cert.pem").write_bytes(cert)
    (directory / "key.pem").write_bytes(key)
    return directory


def face(name: str) -> np.ndarray:
    return photo(FACES / name)


@dataclass
class CallbackReceiver:
    """A local HTTP server receiving callbacks; each is kept with whether its
    signature verified under `secret` (the callbackSigningSecret the partner
    received when it created the submission)."""

    secret: str = ""
    received: list[tuple[dict[str, object], bool]] = field(default_factory=list)
    # The headers of each callback received (lower-case names), in order.
    headers: list[dict[str, str]] = field(default_factory=list)
    # The raw body of each callback received, in order.
    bodies: list[bytes] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    status: int = 200
    url: str = ""
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        ok = bool(self.secret) and verify_headers(self.secret.encode(), body, dict(request.headers))
        self.received.append((json.loads(body), ok))
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        self.bodies.append(body)
        self.arrived.set()
        return Response(status_code=self.status)

    async def start(self, tls: Path | None = None) -> CallbackReceiver:
        """Serve http, or https with `tls`'s cert.pem and key.pem (for 127.0.0.1)."""
        app = Starlette(routes=[Route("/callback", self._handle, methods=["POST"])])
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            ssl_certfile=None if tls is None else str(tls / "cert.pem"),
            ssl_keyfile=None if tls is None else str(tls / "key.pem"),
        )
        self._server = uvicorn.Server(config)
        sock = bind_socket("127.0.0.1", 0)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        scheme = "http" if tls is None else "https"
        self.url = f"{scheme}://127.0.0.1:{sock.getsockname()[1]}/callback"
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
