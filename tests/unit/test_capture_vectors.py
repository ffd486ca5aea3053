"""The server agrees with the shared capture-bundle test vectors
(contracts/test-vectors/capture-bundle.json; the web SDK checks the same file).

Each vector's bundle goes through the gateway's JSON parsing and kyc-tier's digest,
and its signature through the liveness service's device-key check."""

from __future__ import annotations

import base64
import copy
import hashlib
import json

import pytest

from gateway.transcoding import api_field_path
from identity_capture.digest import DigestInput, canonical_text
from identity_platform_api.kyc_tier.v1 import face_pb2
from identity_runtime.errors import DomainError
from tests.support import REPO_ROOT
from tests.support.capture import KTP_ROUTE, LIVENESS_ROUTE, receive, signature_valid

VECTORS = json.loads((REPO_ROOT / "contracts/test-vectors/capture-bundle.json").read_text())
BY_NAME = {v["name"]: v for v in VECTORS["vectors"]}


def _body(vector: dict) -> dict:
    return {
        "customerId": "cus_vectors",
        "challengeId": vector["challenge_id"],
        "bundle": vector["bundle"],
    }


def test_the_vectors_cover_both_outcomes_of_both_checks() -> None:
    expects = [v["expect"] for v in VECTORS["vectors"]]
    assert sum(e["digest_matches"] and e["signature_valid"] for e in expects) >= 4
    assert any(not e["digest_matches"] for e in expects)
    assert any(not e["signature_valid"] for e in expects)
    assert {"signature-p1363", "frames-reordered", "sensor-encoding-edges"} <= set(BY_NAME)


@pytest.mark.parametrize("name", sorted(BY_NAME))
@pytest.mark.parametrize("route", [LIVENESS_ROUTE, KTP_ROUTE])
def test_the_server_computes_the_vector_digest(name: str, route: str) -> None:
    vector = BY_NAME[name]
    expected = vector["expected"]
    received = receive(route, _body(vector))
    bundle = received.bundle
    assert bundle.sensors.hex() == expected["sensors_serialized_hex"]
    assert hashlib.sha256(bundle.sensors).hexdigest() == expected["sensors_sha256"]
    assert [hashlib.sha256(f).hexdigest() for f in bundle.frames] == expected["frame_sha256"]
    assert bundle.captured_at is not None
    text = canonical_text(
        DigestInput(
            challenge_id=vector["challenge_id"],
            nonce=bundle.attestation.nonce,
            device_id=bundle.attestation.device_id,
            captured_at=bundle.captured_at,
            frames=bundle.frames,
            sensors=bundle.sensors,
        )
    )
    assert text == expected["canonical_text"]
    assert received.computed_sha256 == expected["bundle_sha256"]
    assert received.digest_matches is vector["expect"]["digest_matches"]


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_the_server_verifies_the_vector_signature(name: str) -> None:
    vector = BY_NAME[name]
    key = VECTORS["keys"][vector["key"]]
    received = receive(LIVENESS_ROUTE, _body(vector))
    assert (
        signature_valid(key["algorithm"], key["public_key_pem"], received)
        is (vector["expect"]["signature_valid"])
    )


def test_a_p1363_signature_is_refused_but_its_der_form_verifies() -> None:
    """WebCrypto's raw r||s must be converted to DER before it goes on the wire."""
    good = BY_NAME["selfie-flash-with-sensors"]
    raw = base64.b64decode(BY_NAME["signature-p1363"]["bundle"]["attestation"]["signature"])
    der = base64.b64decode(good["bundle"]["attestation"]["signature"])
    assert len(raw) == 64
    assert der[0] == 0x30 and raw != der
    key = VECTORS["keys"]["device-a"]
    assert signature_valid(
        key["algorithm"], key["public_key_pem"], receive(LIVENESS_ROUTE, _body(good))
    )


@pytest.mark.parametrize(
    ("sensors", "field"),
    [
        ({"screenBrightness": -5}, "bundle.sensors.screen_brightness"),
        ({"screenBrightness": 7}, "bundle.sensors.screen_brightness"),
        ({"screenBrightness": "NaN"}, "bundle.sensors.screen_brightness"),
        ({"ambientLux": -1}, "bundle.sensors.ambient_lux"),
        ({"ambientLux": "Infinity"}, "bundle.sensors.ambient_lux"),
        ({"readings": [{"sensor": "gyroscope", "x": "NaN"}]}, "bundle.sensors.readings"),
    ],
)
def test_sensor_values_out_of_range_are_invalid_fields(sensors: dict, field: str) -> None:
    """Signed, but not what the contract allows (black-box probe: -5 and 7 were kept)."""
    body = copy.deepcopy(_body(BY_NAME["selfie-flash-with-sensors"]))
    body["bundle"]["sensors"] = sensors
    with pytest.raises(DomainError) as refused:
        receive(LIVENESS_ROUTE, body)
    assert (refused.value.reason, refused.value.metadata["field"]) == ("INVALID_FIELD", field)


@pytest.mark.parametrize("route", [LIVENESS_ROUTE, KTP_ROUTE])
def test_a_flash_frame_before_the_first_colour_is_an_invalid_field(route: str) -> None:
    """Every vector's baseline precedes the flash (a negative offset, accepted
    above); a flash frame's may not (the flash check would read it as the
    first colour's). The API spells the field as the partner sent it."""
    body = copy.deepcopy(_body(BY_NAME["selfie-flash-with-sensors"]))
    body["bundle"]["frames"][2]["offsetMs"] = -1
    with pytest.raises(DomainError) as refused:
        receive(route, body)
    assert (refused.value.reason, refused.value.metadata["field"]) == (
        "INVALID_FIELD",
        "bundle.frames[2].offset_ms",
    )
    request = face_pb2.CheckFaceLivenessRequest.DESCRIPTOR
    assert api_field_path(request, "bundle.frames[2].offset_ms") == "bundle.frames[2].offsetMs"
