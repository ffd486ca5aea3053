"""How the liveness service is served (see identity_runtime.server)."""

from __future__ import annotations

from identity_runtime import mesh
from identity_runtime.server import ServiceSpec
from services.liveness.bootstrap import build
from services.liveness.servicer import LivenessServiceServicer
from services.liveness.settings import LivenessSettings

SPEC = ServiceSpec.from_mesh(
    mesh.LIVENESS, settings_class=LivenessSettings, build=build, servicers=[LivenessServiceServicer]
)
