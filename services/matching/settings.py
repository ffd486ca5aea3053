"""Settings of the matching service, from `MATCHING_*` environment variables."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from identity_crypto.datakeys import SealedStoreSettings
from identity_inference.pack import DEFAULT_EMBEDDING
from identity_runtime import mesh
from identity_runtime.settings import (
    keyring_missing,
    retention_batch_setting,
    setting,
)
from services.matching.gallery import IVF_MIN_GALLERY_SIZE, IVF_NPROBE, RERANK_FACTOR
from services.matching.opened import (
    DEFAULT_TEMPLATE_CACHE_SIZE,
    DEFAULT_TEMPLATE_CACHE_TTL_SECONDS,
)


@dataclass(frozen=True, kw_only=True)
class MatchingSettings(SealedStoreSettings):
    """Everything the matching service reads from its environment."""

    kms: Literal["local"] = setting(
        "local",
        "Key-encryption service: 'local' reads the KEK keyring "
        "(a cloud KMS/HSM plugs in behind the same interface)",
    )
    model_id: str = setting(
        DEFAULT_EMBEDDING, "Embedding contract of the gallery: model id (qe-face-v3 in production)"
    )
    model_version: str = setting(
        "", "Embedding contract: model version recorded with each template"
    )
    dimension: int = setting(128, "Embedding contract: dimension (512 for qe-face-v3)")
    default_threshold: float | None = setting(
        None,
        "Cosine threshold for organisations without their own; empty = the model calibration's "
        "recommended threshold, else the model's built-in default (0.45 for qe-face-v3)",
    )
    min_threshold: float | None = setting(
        None,
        "Lowest organisation threshold a request may carry; empty = 0.1 below the default "
        "threshold (a lower one lets far more impostors match)",
    )
    max_threshold: float = setting(
        0.95, "Highest organisation threshold a request may carry (genuine faces rarely pass above)"
    )
    calibration_dir: Path | None = setting(
        None, "Extra false-match calibrations (<model_id>.json) overriding built-in ones"
    )
    template_format: Literal["fp16", "int8"] = setting("fp16", "Storage format of sealed templates")
    index_kind: Literal["exact", "ivf", "pq_rerank"] = setting(
        "pq_rerank",
        "1:N index: exact (flat inner product), ivf (approximate) or pq_rerank (PQ fast-scan "
        "candidates re-ranked by exact cosine; exact below ivf_min_gallery_size; see "
        "docs/matching-and-audit.md)",
    )
    ivf_min_gallery_size: int = setting(
        IVF_MIN_GALLERY_SIZE,
        "An ivf or pq_rerank gallery stays exact below this size (training needs data)",
    )
    ivf_nprobe: int = setting(
        IVF_NPROBE,
        "Inverted lists an ivf search visits (recall vs latency; see docs/matching-and-audit.md)",
    )
    rerank_factor: int = setting(
        RERANK_FACTOR,
        "Candidates a pq_rerank search re-ranks by exact cosine, per requested hit",
    )
    search_threads: int = setting(1, "OpenMP threads per FAISS search")
    sync_interval_seconds: float = setting(
        2.0, "How often a replica catches up on other replicas' gallery changes"
    )
    template_cache_size: int = setting(
        DEFAULT_TEMPLATE_CACHE_SIZE,
        "Opened active references kept in memory for Verify (LRU; 0 disables the cache)",
    )
    template_cache_ttl_seconds: float = setting(
        DEFAULT_TEMPLATE_CACHE_TTL_SECONDS,
        "Lifetime of a cached opened reference (changes on other replicas reach the cache "
        "within one sync interval regardless)",
    )
    retention_sweep_interval_seconds: float = setting(
        3600.0,
        "How often enrollment rows retired on erasure are purged after their 7-year "
        "window (also once at start-up)",
    )
    retention_batch_size: int = retention_batch_setting()

    def validate(self) -> list[tuple[str, str]]:
        problems = super().validate()
        problems += keyring_missing(self, "kek_keyring", mesh.MATCHING.env_prefix)
        if not 1 <= self.dimension <= 4096:
            problems.append(("dimension", "must be between 1 and 4096"))
        if not self.model_id.strip():
            problems.append(("model_id", "must not be empty"))
        if self.default_threshold is not None and not -1.0 <= self.default_threshold <= 1.0:
            problems.append(("default_threshold", "must be a cosine in [-1, 1]"))
        if not -1.0 < self.max_threshold <= 1.0:
            problems.append(("max_threshold", "must be a cosine in (-1, 1]"))
        if self.min_threshold is not None and not -1.0 <= self.min_threshold < self.max_threshold:
            problems.append(("min_threshold", "must be a cosine below max_threshold"))
        if self.sync_interval_seconds <= 0:
            problems.append(("sync_interval_seconds", "must be positive"))
        if self.template_cache_size < 0 or self.template_cache_ttl_seconds < 0:
            problems.append(
                ("template_cache_size", "the template cache's size and TTL must not be negative")
            )
        if self.ivf_nprobe < 1 or self.search_threads < 1:
            problems.append(("ivf_nprobe", "ivf_nprobe and search_threads must be at least 1"))
        if not 1 <= self.rerank_factor <= 1000:
            problems.append(("rerank_factor", "must be between 1 and 1000"))
        if self.index_kind == "pq_rerank" and self.dimension % 8:
            problems.append(("index_kind", "pq_rerank needs a dimension divisible by 8"))
        return problems


# What fixes the accepted range of organisation thresholds (see contract.resolve_profile).
THRESHOLD_FIELDS = (
    "model_id",
    "model_version",
    "dimension",
    "default_threshold",
    "min_threshold",
    "max_threshold",
    "calibration_dir",
)


def threshold_settings_class() -> type:
    """MatchingSettings' threshold fields alone (same names, defaults and
    environment variables): what an operator's tool (`identity orgs
    set-match-threshold`) needs to bound a threshold as matching does,
    without matching's database or keys."""
    chosen = [f for f in dataclasses.fields(MatchingSettings) if f.name in THRESHOLD_FIELDS]
    made = dataclasses.make_dataclass(
        "MatchingThresholdSettings",
        [
            (f.name, f.type, dataclasses.field(default=f.default, metadata=f.metadata))
            for f in chosen
        ],
        frozen=True,
    )
    # The annotations are strings: resolved against this module's names.
    made.__module__ = __name__
    return made
