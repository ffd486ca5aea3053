"""The web SDK has an instruction for every reason the capture routes can return
(sdk/web/src/guidance.ts): the outcome reasons of capture-quality, liveness, the KTP
checks and the kyc-tier flows, and the error reasons the capture RPCs document."""

from __future__ import annotations

import re

from identity_platform_api.common.v1 import errors_pb2
from tests.support import REPO_ROOT

GUIDANCE = REPO_ROOT / "sdk" / "web" / "src" / "guidance.ts"
CODE = re.compile(r'"([A-Z]{2,}(?:_[A-Z0-9]+)+)"')
# Modules whose string codes are reasons a capture can come back with.
REASON_SOURCES = (
    "libs/identity_inference/quality.py",
    "services/liveness/flash.py",
    "services/liveness/checks.py",
    "libs/identity_ktp/analysis.py",
    "libs/identity_ktp/nik.py",
    "services/capture_quality/faces.py",
    "services/capture_quality/ktp.py",
    "services/kyc_tier/flows",
)
# Reasons of kyc-tier routes the SDK does not call (Dukcapil evidence and portraits, reviews
# and an upgrade citing one, a match against a stored verification).
NOT_SDK_ROUTES = {
    "EVIDENCE_SIGNATURE_INVALID",
    "REVIEW_NOT_FOUND",
    "REVIEW_ALREADY_DECIDED",
    "REVIEW_SCOPE_EXCEEDED",
    "REVIEW_ALREADY_CITED",
    "VERIFICATION_NOT_FOUND",
    "PORTRAIT_NOT_FOUND",
    "PORTRAIT_UNUSABLE",
    "PORTRAIT_MISMATCH",
}
CAPTURE_RPCS = {
    "protos/identity/kyc_tier/v1/ktp.proto": ("IssueKtpChallenge", "SubmitKtpCapture"),
    "protos/identity/kyc_tier/v1/face.proto": ("IssueFlashChallenge", "CheckFaceLiveness"),
    "protos/identity/kyc_tier/v1/step_up.proto": ("StepUp",),
    "protos/identity/kyc_tier/v1/devices.proto": ("RegisterDevice",),
}


def sdk_codes() -> set[str]:
    """The codes of the GUIDANCE table: its keys and the codes grouped with `same(...)`."""
    text = GUIDANCE.read_text()
    table = text[text.index("export const GUIDANCE") : text.index("const FALLBACK")]
    keys = re.findall(r"^\s+([A-Z][A-Z0-9_]+): \{", table, re.MULTILINE)
    return set(keys) | set(CODE.findall(table))


def error_reasons() -> set[str]:
    prefix = "ERROR_REASON_"
    return {n[len(prefix) :] for n in errors_pb2.ErrorReason.keys() if n != f"{prefix}UNSPECIFIED"}


def documented_errors() -> set[str]:
    known = error_reasons()
    found: set[str] = set()
    for path, rpcs in CAPTURE_RPCS.items():
        text = (REPO_ROOT / path).read_text()
        for rpc in rpcs:
            comment = re.search(rf"((?:\s*//[^\n]*\n)+)\s*rpc {rpc}\(", text)
            assert comment, f"{rpc} has no comment in {path}"
            words = set(re.findall(r"[A-Z][A-Z0-9_]+\*?", comment.group(1)))
            found |= words & known
            found |= {r for w in words if w.endswith("_*") for r in known if r.startswith(w[:-1])}
    return found


def test_the_sdk_reads_the_codes_out_of_its_table() -> None:
    codes = sdk_codes()
    assert {"FACE_NOT_FOUND", "CARD_GLARE", "NIK_LENGTH", "DEVICE_NOT_FOUND"} <= codes
    assert len(codes) > 60


def test_every_capture_outcome_reason_has_an_instruction() -> None:
    server = set()
    for source in REASON_SOURCES:
        path = REPO_ROOT / source
        for module in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            server |= set(CODE.findall(module.read_text()))
    server -= NOT_SDK_ROUTES
    assert {"YAW_OUT_OF_RANGE", "FLASH_RESPONSE_MISSING", "CARD_GLARE"} <= server
    assert sorted(server - sdk_codes()) == []


def test_every_error_the_capture_routes_document_has_an_instruction() -> None:
    documented = documented_errors()
    assert {"CHALLENGE_EXPIRED", "NONCE_REPLAYED", "IMAGE_TOO_LARGE", "RATE_LIMITED"} <= documented
    assert sorted(documented - sdk_codes()) == []


def test_the_gateways_own_refusals_of_a_slow_or_large_upload_have_an_instruction() -> None:
    """Not in the RPCs' comments: the gateway answers them itself while it reads
    the photos (docs/gateway.md); a person on a weak network sees them."""
    assert {"REQUEST_BODY_TIMEOUT", "PAYLOAD_TOO_LARGE", "RATE_LIMITED"} <= sdk_codes()
