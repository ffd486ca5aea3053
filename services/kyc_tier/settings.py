"""Settings of the kyc-tier service, from `KYC_TIER_*` environment variables."""

from __future__ import annotations

from dataclasses import dataclass

from identity_runtime import mesh
from identity_runtime.settings import ServiceSettings, setting


@dataclass(frozen=True, kw_only=True)
class KycTierSettings(ServiceSettings):
    """Everything the kyc-tier service reads from its environment."""

    database_url: str = setting(help="SQLAlchemy URL: postgresql://... or sqlite:///path", secret=True)
    api_key_pepper: str = setting(help="Secret mixed into API-key hashes (at least 32 characters)", secret=True)
    capture_quality_address: str = setting(mesh.default_address(mesh.CAPTURE_QUALITY), "host:port of capture-quality")
    liveness_address: str = setting(mesh.default_address(mesh.LIVENESS), "host:port of liveness")
    embedding_address: str = setting(mesh.default_address(mesh.EMBEDDING), "host:port of embedding")
    matching_address: str = setting(mesh.default_address(mesh.MATCHING), "host:port of matching")
    audit_address: str = setting(mesh.default_address(mesh.AUDIT), "host:port of audit")
    database_pool_size: int = setting(5, "Connections per process to PostgreSQL")

    def validate(self) -> list[tuple[str, str]]:
        problems = super().validate()
        if len(self.api_key_pepper) < 32:
            problems.append(("api_key_pepper", "must be at least 32 characters"))
        return problems

    def downstream_addresses(self) -> dict[str, str]:
        return {
            "capture_quality": self.capture_quality_address,
            "liveness": self.liveness_address,
            "embedding": self.embedding_address,
            "matching": self.matching_address,
            "audit": self.audit_address,
        }
