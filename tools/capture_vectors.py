#!/usr/bin/env python3
"""Write the capture-bundle test vectors (contracts/test-vectors/capture-bundle.json).

    .venv/bin/python tools/capture_vectors.py           # print the vectors
    .venv/bin/python tools/capture_vectors.py --write   # rewrite the committed file

Both sides check the committed file: the server in tests/unit/test_capture_vectors.py,
the web SDK in sdk/web/test/vectors.test.ts. The recipe is
protos/identity/kyc_tier/v1/CAPTURE_SIGNING.md. ECDSA signatures are randomised, so
a rewrite changes every signature (each still verifies); the test key pairs already in
the file are kept. They are test keys: never register them anywhere real.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from google.protobuf import json_format

from identity_capture.digest import DigestInput, canonical_text, rfc3339_seconds
from identity_platform_api.kyc_tier.v1 import resources_pb2

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "contracts" / "test-vectors" / "capture-bundle.json"
ALGORITHM = "KEY_ALGORITHM_ECDSA_P256_SHA256"
KEY_NAMES = ("device-a", "device-b")
CHALLENGE = "chl_01J9Z7TESTVECTOR0000000001"
KTP_CHALLENGE = "chl_01J9Z7TESTVECTOR0000000002"


def _keys(existing: dict[str, Any]) -> dict[str, ec.EllipticCurvePrivateKey]:
    keys = {}
    for name in KEY_NAMES:
        pem = existing.get(name, {}).get("private_key_pkcs8_pem")
        key = (
            serialization.load_pem_private_key(pem.encode(), None)
            if pem
            else ec.generate_private_key(ec.SECP256R1())
        )
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        keys[name] = key
    return keys


def _key_entry(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "algorithm": ALGORITHM,
        "public_key_pem": public.decode(),
        "private_key_pkcs8_pem": private.decode(),
    }


def _frame(bgr: tuple[int, int, int], seed: int) -> bytes:
    """A tiny real JPEG (24 x 16): a colour with a little fixed texture."""
    rng = np.random.default_rng(seed)
    image = np.clip(np.array(bgr) + rng.integers(-12, 12, (16, 24, 3)), 0, 255)
    ok, data = cv2.imencode(".jpg", image.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def _frames(colours: list[tuple[int, int, int]], offsets: list[int]) -> list[dict[str, Any]]:
    return [
        {
            "image": {
                "data": base64.b64encode(_frame(c, i)).decode(),
                "mediaType": "image/jpeg",
            },
            "offsetMs": offset,
            "baseline": offset < 0,
        }
        for i, (c, offset) in enumerate(zip(colours, offsets, strict=True))
    ]


def _sensors_bytes(bundle: dict[str, Any]) -> bytes:
    """What the server hashes: the parsed SensorData, serialised deterministically."""
    message = resources_pb2.CaptureBundle()
    json_format.ParseDict({"sensors": bundle["sensors"]} if "sensors" in bundle else {}, message)
    return (
        message.sensors.SerializeToString(deterministic=True)
        if message.HasField("sensors")
        else b""
    )


def _expected(challenge_id: str, bundle: dict[str, Any]) -> dict[str, Any]:
    attestation = bundle["attestation"]
    message = resources_pb2.CaptureBundle()
    json_format.ParseDict({"attestation": {"capturedAt": attestation["capturedAt"]}}, message)
    captured_at = message.attestation.captured_at.ToDatetime(tzinfo=UTC)
    frames = [base64.b64decode(f["image"]["data"]) for f in bundle["frames"]]
    sensors = _sensors_bytes(bundle)
    text = canonical_text(
        DigestInput(
            challenge_id=challenge_id,
            nonce=attestation["nonce"],
            device_id=attestation["deviceId"],
            captured_at=captured_at,
            frames=frames,
            sensors=sensors,
        )
    )
    return {
        "captured_at_digest_form": rfc3339_seconds(captured_at),
        "frame_sha256": [hashlib.sha256(f).hexdigest() for f in frames],
        "sensors_serialized_hex": sensors.hex(),
        "sensors_sha256": hashlib.sha256(sensors).hexdigest(),
        "canonical_text": text,
        "bundle_sha256": hashlib.sha256(text.encode()).hexdigest(),
    }


def _sign(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    return key.sign(message, ec.ECDSA(hashes.SHA256()))


def _vector(
    name: str,
    description: str,
    key_name: str,
    keys: dict[str, ec.EllipticCurvePrivateKey],
    challenge_id: str,
    bundle: dict[str, Any],
) -> dict[str, Any]:
    expected = _expected(challenge_id, bundle)
    digest = expected["bundle_sha256"]
    bundle["attestation"]["bundleSha256"] = digest
    signature = _sign(keys[key_name], digest.encode())
    bundle["attestation"]["signature"] = base64.b64encode(signature).decode()
    return {
        "name": name,
        "description": description,
        "key": key_name,
        "challenge_id": challenge_id,
        "bundle": bundle,
        "expected": expected,
        "expect": {"digest_matches": True, "signature_valid": True},
    }


def _attestation(nonce: str, captured_at: str, device_id: str) -> dict[str, str]:
    return {"deviceId": device_id, "nonce": nonce, "capturedAt": captured_at}


def _positives(keys: dict[str, ec.EllipticCurvePrivateKey]) -> list[dict[str, Any]]:
    selfie = {
        "frames": _frames(
            [(120, 140, 190), (80, 80, 230), (80, 220, 90), (230, 90, 80), (80, 220, 220)],
            [-300, 240, 640, 1040, 1440],
        ),
        "sensors": {
            "readings": [
                {"sensor": "accelerometer", "offsetMs": -120, "x": 0.1, "y": -9.81, "z": 0.5},
                {"sensor": "gyroscope", "offsetMs": 400, "x": 0.0, "y": 0.01, "z": -0.02},
            ],
            "ambientLux": 312.5,
            "screenBrightness": 1.0,
        },
        "attestation": _attestation(
            "5f1c0a9e3b7d4c21a8e6f0b9d2c4e6a8",
            "2025-06-01T10:04:05Z",
            "web_0a1b2c3d4e5f60718293a4b5",
        ),
    }
    card: dict[str, Any] = {
        "frames": _frames([(200, 190, 170)], [-250]),
        "attestation": _attestation(
            "c0ffee00c0ffee00c0ffee00c0ffee00",
            "2025-06-01T10:06:00Z",
            "web_0a1b2c3d4e5f60718293a4b5",
        ),
    }
    empty_sensors = copy.deepcopy(card)
    empty_sensors["sensors"] = {}
    empty_sensors["attestation"]["nonce"] = "0123456789abcdef"
    fraction = copy.deepcopy(card)
    fraction["attestation"].update(
        nonce="fraction-and-offset", capturedAt="2025-06-01T17:04:05.987654+07:00"
    )
    edges = copy.deepcopy(card)
    edges["attestation"].update(nonce="nonce-ñ-ü-2025", deviceId="web_unicode_and_edges")
    edges["sensors"] = {
        "readings": [
            {"sensor": "magnetometer", "offsetMs": -2147483648, "x": -0.0, "y": 3.4e38, "z": 1e-45},
            {"sensor": "", "offsetMs": 0, "x": 0, "y": 0, "z": 0},
        ],
        "ambientLux": 0.0,
    }
    return [
        _vector(
            "selfie-flash-with-sensors",
            "A selfie: an unflashed baseline (negative offset) and four flash frames, "
            "with motion readings, ambient light and screen brightness.",
            "device-a",
            keys,
            CHALLENGE,
            selfie,
        ),
        _vector(
            "ktp-card-no-sensors",
            "A KTP card capture: one frame, no SensorData (hashed as zero bytes).",
            "device-a",
            keys,
            KTP_CHALLENGE,
            card,
        ),
        _vector(
            "empty-sensors-object",
            "`sensors: {}` serialises to zero bytes: the same hash as no sensors.",
            "device-a",
            keys,
            KTP_CHALLENGE,
            empty_sensors,
        ),
        _vector(
            "captured-at-fraction-and-offset",
            "captured_at with a fraction and a +07:00 offset: the digest uses UTC, "
            "whole seconds, the fraction truncated.",
            "device-b",
            keys,
            KTP_CHALLENGE,
            fraction,
        ),
        _vector(
            "sensor-encoding-edges",
            "Protobuf edge cases: int32 minimum (10-byte varint), -0.0 (written: its "
            "bits are not zero), float32 rounding, the smallest subnormal, an empty "
            "reading, a zero ambientLux (omitted); a non-ASCII nonce (UTF-8 text).",
            "device-b",
            keys,
            KTP_CHALLENGE,
            edges,
        ),
    ]


def _negative(base: dict[str, Any], name: str, description: str, **expect: bool) -> dict[str, Any]:
    vector = copy.deepcopy(base)
    vector.update(name=name, description=description)
    vector["expect"] = {"digest_matches": True, "signature_valid": True, **expect}
    return vector


def _recompute(vector: dict[str, Any]) -> None:
    """Refresh `expected` after the content changed (the declared digest stays)."""
    vector["expected"] = _expected(vector["challenge_id"], vector["bundle"])


def _negatives(
    selfie: dict[str, Any], keys: dict[str, ec.EllipticCurvePrivateKey]
) -> list[dict[str, Any]]:
    digest = selfie["expected"]["bundle_sha256"]
    attestation = selfie["bundle"]["attestation"]

    def signed(name: str, description: str, signature: bytes) -> dict[str, Any]:
        vector = _negative(selfie, name, description, signature_valid=False)
        vector["bundle"]["attestation"]["signature"] = base64.b64encode(signature).decode()
        return vector

    reordered = _negative(
        selfie,
        "frames-reordered",
        "Two flash frames swapped after signing: the content no longer hashes to the "
        "declared digest (BUNDLE_HASH_MISMATCH).",
        digest_matches=False,
    )
    frames = reordered["bundle"]["frames"]
    frames[1], frames[2] = frames[2], frames[1]
    _recompute(reordered)
    later = _negative(
        selfie,
        "captured-at-changed",
        "captured_at moved by one second after signing (BUNDLE_HASH_MISMATCH).",
        digest_matches=False,
    )
    later["bundle"]["attestation"]["capturedAt"] = "2025-06-01T10:04:06Z"
    _recompute(later)
    challenge = _negative(
        selfie,
        "other-challenge",
        "The bundle submitted with another challenge id than the one signed.",
        digest_matches=False,
    )
    challenge["challenge_id"] = KTP_CHALLENGE
    _recompute(challenge)
    r, s = decode_dss_signature(base64.b64decode(attestation["signature"]))
    key = keys["device-a"]
    return [
        reordered,
        later,
        challenge,
        signed(
            "signature-p1363",
            "The right signature in WebCrypto's raw r||s (IEEE P1363) form, not DER.",
            r.to_bytes(32, "big") + s.to_bytes(32, "big"),
        ),
        signed(
            "signature-over-uppercase-hex",
            "Signed the digest's hex in upper case (the server verifies lower case).",
            _sign(key, digest.upper().encode()),
        ),
        signed(
            "signature-over-raw-digest",
            "Signed the 32 digest bytes instead of the UTF-8 of its 64 hex characters.",
            _sign(key, bytes.fromhex(digest)),
        ),
        signed(
            "signature-over-canonical-text",
            "Signed the canonical text instead of its digest.",
            _sign(key, selfie["expected"]["canonical_text"].encode()),
        ),
        signed(
            "signature-by-another-key",
            "Signed by device-b's key while the bundle names device-a's.",
            _sign(keys["device-b"], digest.encode()),
        ),
    ]


def build(existing: dict[str, Any]) -> dict[str, Any]:
    keys = _keys(existing.get("keys", {}))
    positives = _positives(keys)
    return {
        "description": (
            "Shared test vectors of the capture-bundle digest and device signature. "
            "Recipe: protos/identity/kyc_tier/v1/CAPTURE_SIGNING.md. Each vector is a "
            "CaptureBundle in the gateway's JSON mapping plus the challenge id it is "
            "submitted with; `expected` is what the content hashes to, `expect` whether "
            "the declared digest matches it and whether the signature verifies under the "
            "vector's key over the declared digest. Generated by tools/capture_vectors.py; "
            "the keys are test-only."
        ),
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d"),
        "keys": {name: _key_entry(key) for name, key in keys.items()},
        "vectors": positives + _negatives(positives[0], keys),
    }


def main(argv: list[str]) -> int:
    existing = json.loads(VECTORS.read_text()) if VECTORS.exists() else {}
    text = json.dumps(build(existing), indent=2, ensure_ascii=False) + "\n"
    if "--write" in argv:
        VECTORS.parent.mkdir(parents=True, exist_ok=True)
        VECTORS.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
