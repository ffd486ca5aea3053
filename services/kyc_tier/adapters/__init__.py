"""gRPC implementations of the ports kyc-tier calls (see ports/).

Each adapter converts domain values to the contract's messages and back, and
turns a downstream failure into a domain error that keeps the downstream
code and reason (so a partner sees CHALLENGE_EXPIRED, not a generic 500).
"""

from services.kyc_tier.adapters.audit import GrpcAuditSink
from services.kyc_tier.adapters.faces import GrpcCaptureQuality, GrpcEmbedder
from services.kyc_tier.adapters.liveness import GrpcLiveness
from services.kyc_tier.adapters.matching import GrpcMatcher

__all__ = ["GrpcAuditSink", "GrpcCaptureQuality", "GrpcEmbedder", "GrpcLiveness", "GrpcMatcher"]
