"""How the matching service is served (see identity_runtime.server)."""

from __future__ import annotations

from identity_runtime import mesh
from identity_runtime.server import ServiceSpec
from services.matching.bootstrap import build
from services.matching.servicer import MatchingServiceServicer
from services.matching.settings import MatchingSettings

SPEC = ServiceSpec.from_mesh(
    mesh.MATCHING, settings_class=MatchingSettings, build=build, servicers=[MatchingServiceServicer]
)
