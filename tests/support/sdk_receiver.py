"""A local stand-in for the gateway's capture routes, for the web SDK's browser tests
before the mesh serves the SDK (no models, no database).

It serves the built SDK and its test page, and answers the SDK's routes with the
server's own code where it matters: the gateway's JSON parsing, kyc-tier's bundle
digest, the liveness service's key loading, signature check and flash-challenge check
(services/liveness/flash.py) on the mean colour of the frame's centre, where the test
camera draws the face (for a KTP capture, the card guide, where it draws the card).
Everything it received is kept for the test to inspect.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from google.protobuf import json_format
from google.protobuf.message import Message

from gateway.errors import HTTP_STATUS_BY_CODE
from gateway.transcoding import build_request
from identity_capture import signatures
from identity_ktp.flash import card_colour
from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.kyc_tier.v1 import (
    devices_pb2,
    face_pb2,
    ktp_pb2,
    resources_pb2,
    step_up_pb2,
)
from identity_runtime.errors import (
    AlreadyExists,
    DomainError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.liveness import flash
from services.liveness.checks import ChallengePolicy
from tests.support.capture import ALGORITHMS, ReceivedBundle, receive, route

FLASH_DURATION_MS = 400
TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".map": "application/json",
    ".jpg": "image/jpeg",
}
# Liveness's default thresholds.
POLICY = ChallengePolicy()


@dataclass
class Capture:
    route: str
    received: ReceivedBundle
    signature_valid: bool
    frames: list[np.ndarray]
    flash: flash.FlashResult | None


@dataclass
class Receiver:
    static_roots: dict[str, Path]
    devices: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)
    registrations: list[dict[str, Any]] = field(default_factory=list)
    challenges: dict[str, tuple[str, list[str], bool]] = field(default_factory=dict)
    captures: list[Capture] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- routes -----------------------------------------------------------------

    def register(self, body: bytes) -> Message:
        request = build_request(route("/api/identity/devices/register"), {}, {}, body)
        algorithm = ALGORITHMS[types_pb2.KeyAlgorithm.Name(request.algorithm)]
        der = signatures.load_public_key(algorithm, request.public_key_pem.encode())
        self.registrations.append(json_format.MessageToDict(request))
        known = self.devices.get(request.device_id)
        if known is not None and known[2] != der:
            raise AlreadyExists("another key", "DEVICE_ALREADY_REGISTERED")
        self.devices[request.device_id] = (request.customer_id, algorithm, der)
        answer = devices_pb2.RegisterDeviceResponse(
            device_id=request.device_id,
            customer_id=request.customer_id,
            key_fingerprint=signatures.fingerprint(der),
            created=known is None,
        )
        answer.registered_at.FromDatetime(datetime.now(UTC))
        return answer

    def challenge(self, template: str, body: bytes, purpose: int) -> Message:
        request = build_request(route(template), {}, {}, body)
        sequence = flash.random_sequence(4)
        challenge_id = f"chl_{uuid.uuid4().hex[:20]}"
        self.challenges[challenge_id] = (request.customer_id, sequence, False)
        issued = types_pb2.FlashChallenge(
            challenge_id=challenge_id,
            purpose=purpose,
            sequence=[types_pb2.FlashColour(hex=c) for c in sequence],
            flash_duration_ms=FLASH_DURATION_MS,
        )
        now = datetime.now(UTC)
        issued.issued_at.FromDatetime(now)
        issued.expires_at.FromDatetime(now + timedelta(minutes=2))
        return face_pb2.IssueFlashChallengeResponse(challenge=issued)

    def capture(self, template: str, body: bytes) -> Capture:
        received = receive(template, json.loads(body))
        request = received.request
        known = self.challenges.get(request.challenge_id)
        if known is None or known[0] != request.customer_id or known[2]:
            raise NotFound("no open challenge", "CHALLENGE_NOT_FOUND")
        device = self.devices.get(received.bundle.attestation.device_id)
        if device is None or device[0] != request.customer_id:
            raise NotFound("no such device", "DEVICE_NOT_FOUND")
        valid = signatures.verify(
            device[1],
            device[2],
            received.bundle.attestation.bundle_sha256.lower(),
            received.bundle.attestation.signature,
        )
        frames = [
            cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            for data in received.bundle.frames
        ]
        # A card is sampled where the SDK's card guide is (capture-quality's
        # fallback when it finds no outline), a face at the frame's centre.
        card = template == "/api/identity/document/ktp/capture"
        colours = [
            flash.FrameColour(
                offset,
                card_colour(image, (), image.shape[:2])[0] if card else _centre_bgr(image),
                True,
            )
            for image, offset, baseline in zip(
                frames, received.bundle.offsets_ms, received.bundle.baseline, strict=True
            )
            if not baseline
        ]
        result = flash.verify(
            known[1],
            FLASH_DURATION_MS,
            colours,
            # Liveness's defaults for a card and for a face.
            min_response=POLICY.min_card_flash_response if card else POLICY.min_flash_response,
            subject="card" if card else "face",
        )
        capture = Capture(template, received, valid, frames, result)
        self.captures.append(capture)
        if not received.digest_matches:
            raise InvalidArgument("hash mismatch", "BUNDLE_HASH_MISMATCH")
        if not valid:
            raise PermissionDenied("signature", "BUNDLE_SIGNATURE_INVALID")
        self.challenges[request.challenge_id] = (*known[:2], True)
        return capture

    def answer(self, capture: Capture) -> Message:
        request = capture.received.request
        reasons = [
            types_pb2.Reason(code=code, message=text)
            for code, text in (capture.flash.reasons if capture.flash else [])
        ]
        passed = not reasons
        outcome = (
            resources_pb2.VERIFICATION_OUTCOME_PASSED
            if passed
            else (resources_pb2.VERIFICATION_OUTCOME_FAILED)
        )
        verification = resources_pb2.Verification(
            verification_id=f"ver_{uuid.uuid4().hex[:20]}",
            customer_id=request.customer_id,
            outcome=outcome,
            reasons=reasons,
        )
        if capture.route.endswith("/step-up"):
            return step_up_pb2.StepUpResponse(
                allow=passed, reasons=reasons, verification_id=verification.verification_id
            )
        if capture.route.endswith("/ktp/capture"):
            verification.kind = resources_pb2.VERIFICATION_KIND_KTP_CAPTURE
            return ktp_pb2.SubmitKtpCaptureResponse(verification=verification)
        verification.kind = resources_pb2.VERIFICATION_KIND_FACE_LIVENESS
        return face_pb2.CheckFaceLivenessResponse(
            verification=verification,
            liveness=resources_pb2.LivenessScores(
                live=passed, flash_score=capture.flash.score if capture.flash else 0.0
            ),
        )

    def handle_post(self, path: str, body: bytes) -> Message:
        with self.lock:
            if path == "/api/identity/devices/register":
                return self.register(body)
            if path == "/api/identity/face/flash-challenge":
                purpose = json.loads(body).get("purpose", "CHALLENGE_PURPOSE_FACE_LIVENESS")
                return self.challenge(path, body, types_pb2.ChallengePurpose.Value(purpose))
            if path == "/api/identity/document/ktp/challenge":
                return self.challenge(path, body, types_pb2.CHALLENGE_PURPOSE_KTP_CAPTURE)
            return self.answer(self.capture(path, body))


def _centre_bgr(image: np.ndarray) -> tuple[float, float, float]:
    height, width = image.shape[:2]
    centre = image[int(0.4 * height) : int(0.6 * height), int(0.42 * width) : int(0.58 * width)]
    b, g, r = (float(v) for v in centre.reshape(-1, 3).mean(axis=0))
    return b, g, r


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            for prefix, root in receiver.static_roots.items():
                if path.startswith(prefix):
                    file = (root / path[len(prefix) :]).resolve()
                    if file.is_file() and root.resolve() in file.parents:
                        self._send(200, file.read_bytes(), TYPES.get(file.suffix, "text/plain"))
                        return
            self._send(404, b"not found", "text/plain")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                answer = receiver.handle_post(self.path, body)
            except DomainError as exc:
                status = HTTP_STATUS_BY_CODE.get(exc.code, 400)
                error = {"code": status, "status": exc.code, "reason": exc.reason}
                self._send(status, json.dumps({"error": error}).encode(), "application/json")
                return
            except Exception as exc:  # the test fails on any of these
                receiver.errors.append(f"{self.path}: {exc!r}")
                self._send(500, b"{}", "application/json")
                return
            payload = json_format.MessageToDict(answer, always_print_fields_with_no_presence=True)
            self._send(200, json.dumps(payload).encode(), "application/json")

    return Handler


class RunningReceiver:
    def __init__(self, receiver: Receiver):
        self.receiver = receiver
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> RunningReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
