"""How the audit service is served (see identity_runtime.server)."""

from __future__ import annotations

from identity_runtime import mesh
from identity_runtime.server import ServiceSpec
from services.audit.bootstrap import build
from services.audit.servicer import AuditServiceServicer
from services.audit.settings import AuditSettings

SPEC = ServiceSpec.from_mesh(
    mesh.AUDIT, settings_class=AuditSettings, build=build, servicers=[AuditServiceServicer]
)
