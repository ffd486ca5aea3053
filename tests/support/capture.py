"""The server's side of a capture bundle, for tests of clients (test vectors, the web
SDK): the gateway's JSON -> request parsing, kyc-tier's digest, the device-key check."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from gateway.routing import Route, build_routes
from gateway.transcoding import build_request
from identity_capture import signatures
from identity_capture.sdk import SdkSigner
from identity_platform_api.common.v1 import types_pb2
from services.kyc_tier import bundles
from services.kyc_tier.bundles import BundleInput
from services.kyc_tier.mapping import captures

LIVENESS_ROUTE = "/api/identity/face/liveness"
KTP_ROUTE = "/api/identity/document/ktp/capture"
STEP_UP_ROUTE = "/api/identity/auth/step-up"
ALGORITHMS = {
    types_pb2.KeyAlgorithm.Name(types_pb2.KEY_ALGORITHM_ECDSA_P256_SHA256): signatures.ECDSA_P256,
    types_pb2.KeyAlgorithm.Name(types_pb2.KEY_ALGORITHM_ED25519): signatures.ED25519,
}


def route(template: str, verb: str = "POST") -> Route:
    return next(r for r in build_routes() if r.path.template == template and r.verb == verb)


@dataclass(frozen=True)
class ReceivedBundle:
    request: Any
    bundle: BundleInput
    # What kyc-tier computes from the content (identity_capture.digest).
    computed_sha256: str

    @property
    def declared_sha256(self) -> str:
        return self.bundle.attestation.bundle_sha256

    @property
    def digest_matches(self) -> bool:
        return self.computed_sha256 == self.declared_sha256.lower()


def receive(template: str, body: dict[str, Any]) -> ReceivedBundle:
    """A capture route's JSON body as the gateway parses it and kyc-tier digests it."""
    request = build_request(route(template), {}, {}, json.dumps(body).encode())
    bundle = captures.bundle_input(request.bundle)
    bundles.validate(bundle, request.challenge_id)
    return ReceivedBundle(request, bundle, bundles.digest(bundle, request.challenge_id))


def signature_valid(algorithm: str, public_key_pem: str, received: ReceivedBundle) -> bool:
    """The liveness service's check: the signature over the declared digest, lower case."""
    der = signatures.load_public_key(ALGORITHMS[algorithm], public_key_pem.encode())
    attestation = received.bundle.attestation
    return signatures.verify(
        ALGORITHMS[algorithm], der, attestation.bundle_sha256.lower(), attestation.signature
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def bundle(
    signer: SdkSigner,
    challenge: dict[str, Any],
    frames: list[bytes],
    nonce: str | None = None,
    baseline: bytes | None = None,
) -> dict[str, Any]:
    """What the SDK posts: an optional unflashed baseline frame, then one frame
    per flashed colour, signed with the device key."""
    signed = signer.sign_bundle(
        challenge_id=challenge["challengeId"],
        frames=([baseline] if baseline else []) + frames,
        nonce=nonce,
    )
    duration = challenge.get("flashDurationMs", 400)
    listed = (
        [{"image": {"data": b64(baseline)}, "offsetMs": 0, "baseline": True}] if baseline else []
    )
    listed += [{"image": {"data": b64(f)}, "offsetMs": i * duration} for i, f in enumerate(frames)]
    return {
        "frames": listed,
        "attestation": signed.attestation_json(),
    }
