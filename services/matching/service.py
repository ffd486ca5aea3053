"""How the matching service is served (see identity_runtime.server)."""

from __future__ import annotations

from identity_platform_api.matching.v1 import matching_pb2, matching_pb2_grpc
from identity_runtime.server import ServiceSpec
from services.matching.bootstrap import build
from services.matching.servicer import MatchingServiceServicer
from services.matching.settings import MatchingSettings

SPEC = ServiceSpec(
    name="matching",
    settings_class=MatchingSettings,
    env_prefix="MATCHING",
    service_names=[matching_pb2.DESCRIPTOR.services_by_name["MatchingService"].full_name],
    build=build,
    servicers=lambda core, settings: [
        (matching_pb2_grpc.add_MatchingServiceServicer_to_server, MatchingServiceServicer(core)),
    ],
)
