"""How the face-match service is served (see identity_runtime.server)."""

from __future__ import annotations

from identity_runtime import mesh
from identity_runtime.server import ServiceSpec
from services.face_match.bootstrap import build
from services.face_match.servicer import OAuthServiceServicer, SubmissionServiceServicer
from services.face_match.settings import FaceMatchSettings

SPEC = ServiceSpec.from_mesh(
    mesh.FACE_MATCH,
    settings_class=FaceMatchSettings,
    build=build,
    servicers=[SubmissionServiceServicer, OAuthServiceServicer],
)
