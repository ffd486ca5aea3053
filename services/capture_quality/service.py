"""How the capture-quality service is served (see identity_runtime.server)."""

from __future__ import annotations

from identity_runtime import mesh
from identity_runtime.server import ServiceSpec
from services.capture_quality.bootstrap import build
from services.capture_quality.servicer import CaptureQualityServiceServicer
from services.capture_quality.settings import CaptureQualitySettings

SPEC = ServiceSpec.from_mesh(
    mesh.CAPTURE_QUALITY,
    settings_class=CaptureQualitySettings,
    build=build,
    servicers=[CaptureQualityServiceServicer],
)
