"""Consent for optional capture metadata (UU PDP; seed 000: GPS and camera
parameters only with the person's consent).

A bundle's `metadata` part is kept only when its `consent` record grants the
part's scope; otherwise the part is cleared before the bundle is serialised
for sealing, so it is never stored, and the response names it in
`dropped_metadata`. A malformed consent record is refused (INVALID_FIELD),
never silently taken as consent. Motion readings (SensorData) are part of
the signed digest and judged by liveness, so they are not gated here.
"""

from __future__ import annotations

import re

from identity_platform_api.kyc_tier.v1 import resources_pb2
from identity_runtime.errors import invalid_field

SCOPES = frozenset({"location", "camera_parameters", "motion_sensors"})
# CaptureMetadata field -> the consent scope it needs.
PARTS = {"location": "location", "camera": "camera_parameters"}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FIELD = "bundle.metadata.consent"


def granted_scopes(metadata: resources_pb2.CaptureMetadata) -> frozenset[str]:
    """The scopes a well-formed consent record grants (none without one)."""
    if not metadata.HasField("consent"):
        return frozenset()
    consent = metadata.consent
    if not consent.text_version.strip():
        raise invalid_field(f"{_FIELD}.text_version", "is required")
    if not _SHA256.match(consent.text_sha256):
        raise invalid_field(f"{_FIELD}.text_sha256", "must be lowercase hex SHA-256")
    if not consent.scopes or not set(consent.scopes) <= SCOPES:
        raise invalid_field(f"{_FIELD}.scopes", f"must be some of {', '.join(sorted(SCOPES))}")
    if not consent.HasField("granted_at"):
        raise invalid_field(f"{_FIELD}.granted_at", "is required")
    return frozenset(consent.scopes)


def dropped_metadata(bundle: resources_pb2.CaptureBundle) -> list[str]:
    """The scopes of the metadata parts sent without consent (dropped)."""
    metadata = bundle.metadata
    granted = granted_scopes(metadata)
    return [
        scope
        for part, scope in PARTS.items()
        if metadata.HasField(part) and scope not in granted  # type: ignore[arg-type]
    ]


def consented(bundle: resources_pb2.CaptureBundle) -> resources_pb2.CaptureBundle:
    """The bundle as it may be stored: metadata parts without consent cleared."""
    dropped = dropped_metadata(bundle)
    if not dropped:
        return bundle
    kept = resources_pb2.CaptureBundle()
    kept.CopyFrom(bundle)
    for part, scope in PARTS.items():
        if scope in dropped:
            kept.metadata.ClearField(part)  # type: ignore[arg-type]
    if not kept.metadata.ListFields():
        kept.ClearField("metadata")
    return kept
