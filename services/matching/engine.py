"""The matching core: enroll, verify 1:1, search 1:N, list, retire, shred.

Tenancy: every method takes the caller's organisation (from
`identity_runtime.context.require_org()` in the servicer) and touches only
that organisation's rows and gallery.

Replicas. Each replica holds every organisation's gallery in memory. It is
built from the database at start (`rebuild`) and kept current two ways: a
replica applies its own writes right after they commit, and `catch_up`
(every `sync_interval_seconds`) reads each organisation's change number and
applies the rows changed above its high-water mark, so a write on one
replica reaches the others within one interval. Search results are checked
against the database before they are returned, so a reference retired or
shredded on another replica is never reported even inside that interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy.orm import Session

from identity_runtime import logs, metrics
from identity_runtime.errors import DomainError, invalid_field
from identity_store.db import Database
from services.matching.contract import (
    RETIRE_REASONS,
    SOURCE_PRIORITY,
    EmbeddingContract,
    ModelProfile,
    validate_embedding,
    validate_id,
    validate_quality,
)
from services.matching.enrollments import EnrollmentRecord, EnrollmentStore
from services.matching.gallery import Gallery, GalleryEntry, Hit
from services.matching.opened import OpenedReference, OpenedTemplates

log = logs.get_logger("identity.matching")

MAX_TOP_K = 100
DEFAULT_TOP_K = 10
# Most (customer, probe) pairs one VerifyBatch call takes.
MAX_VERIFY_BATCH = 256
# The metric's reference_source of a supplied reference embedding: a partner's
# image, or another frame of the probe's own capture (kyc-tier's flash check).
SUPPLIED_BY_PARTNER, CAPTURE_FRAME = "reference_embedding", "capture_frame"


@dataclass(frozen=True)
class EmbeddingInput:
    contract: EmbeddingContract
    values: Sequence[float]


@dataclass(frozen=True)
class VerifyResult:
    score: float
    threshold: float
    match: bool
    estimated_false_match_rate: float
    calibration_id: str
    enrollment_id: str
    reference_source: str


@dataclass(frozen=True)
class BatchItem:
    customer_id: str
    probe: EmbeddingInput


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    index_kind: str
    gallery_size: int


@dataclass(frozen=True)
class EnrollOutcome:
    record: EnrollmentRecord
    duplicates: list[Hit]


@dataclass(frozen=True)
class ShredOutcome:
    destroyed_key_count: int
    shredded_at: datetime


@dataclass(frozen=True, eq=False)
class MatchingEngine:
    database: Database
    store: EnrollmentStore
    gallery: Gallery
    profile: ModelProfile
    # Opened active references of recently verified customers (see opened.py).
    templates: OpenedTemplates = field(default_factory=OpenedTemplates)

    @property
    def contract(self) -> EmbeddingContract:
        return self.profile.contract

    # --- 1:1 -------------------------------------------------------------------

    async def verify(
        self,
        org_id: str,
        probe: EmbeddingInput,
        customer_id: str | None,
        reference: EmbeddingInput | None,
        threshold: float | None = None,
        supplied_source: str = SUPPLIED_BY_PARTNER,
    ) -> VerifyResult:
        """`threshold` is the organisation's (None = the deployment's default);
        `supplied_source` labels a supplied reference's score in the metric."""
        probe_vector = validate_embedding("probe", probe.contract, probe.values, self.contract)
        applied = self.profile.threshold(threshold)
        if customer_id is None and reference is None:
            raise invalid_field("reference", "give customer_id or reference_embedding")
        if reference is not None:
            reference_vector = validate_embedding(
                "reference_embedding", reference.contract, reference.values, self.contract
            )
            enrollment_id, source, label = "", "", supplied_source
        else:
            validate_id("customer_id", customer_id or "")
            cached = self.templates.get(org_id, customer_id or "")
            if cached is None:
                found = await self._open_references(org_id, [customer_id or ""])
                opened = found[customer_id or ""]
                if isinstance(opened, DomainError):
                    raise opened
            else:
                opened = cached
            # No await from here on: a cached vector is read before anything can wipe it.
            reference_vector = opened.vector
            enrollment_id, source = opened.enrollment_id, opened.source
            label = source
        return self._score(probe_vector, reference_vector, applied, enrollment_id, source, label)

    def _score(
        self,
        probe_vector: np.ndarray,
        reference_vector: np.ndarray,
        applied: float,
        enrollment_id: str,
        source: str,
        label: str,
    ) -> VerifyResult:
        """`label`: the metric's reference_source (the enrolled source, or what
        a supplied reference is)."""
        # Unit vectors: rounding alone can take the product past +-1.
        score = min(1.0, max(-1.0, float(probe_vector @ reference_vector)))
        metrics.match_score(label, "match" if score >= applied else "no_match").observe(score)
        return VerifyResult(
            score=score,
            threshold=applied,
            match=score >= applied,
            estimated_false_match_rate=self.profile.false_match_rate(score),
            calibration_id=self.profile.calibration_id,
            enrollment_id=enrollment_id,
            reference_source=source,
        )

    async def _open_references(
        self, org_id: str, customer_ids: Sequence[str]
    ) -> dict[str, OpenedReference | DomainError]:
        """The customers' active references opened (one transaction for all),
        or each one's refusal; opened ones go into the template cache."""
        ticket = self.templates.ticket()

        def read(session: Session) -> dict[str, OpenedReference | DomainError]:
            out: dict[str, OpenedReference | DomainError] = {}
            for customer_id in customer_ids:
                if customer_id in out:
                    continue
                try:
                    found = self.store.active_reference(session, org_id, customer_id)
                except DomainError as exc:
                    out[customer_id] = exc
                    continue
                out[customer_id] = OpenedReference(
                    found.record.enrollment_id, found.record.source, found.vector
                )
            return out

        opened = await self.database.run(read)
        for customer_id, reference in opened.items():
            if isinstance(reference, OpenedReference):
                self.templates.put(org_id, customer_id, reference, ticket)
        return opened

    async def verify_batch(
        self, org_id: str, items: Sequence[BatchItem], threshold: float | None = None
    ) -> list[VerifyResult | DomainError]:
        """Each probe against its customer's active reference: per item a
        result or the refusal Verify would give for it. The batch itself is
        refused when empty or larger than MAX_VERIFY_BATCH, or for a bad
        threshold."""
        applied = self.profile.threshold(threshold)
        if not items:
            raise invalid_field("items", "give at least one item")
        if len(items) > MAX_VERIFY_BATCH:
            raise invalid_field("items", f"at most {MAX_VERIFY_BATCH} items per call")
        probes: list[np.ndarray | DomainError] = []
        # Copies of cached references: what an invalidation wipes meanwhile is not read.
        references: dict[str, OpenedReference | DomainError] = {}
        for index, item in enumerate(items):
            try:
                validate_id(f"items[{index}].customer_id", item.customer_id)
                probes.append(
                    validate_embedding(
                        f"items[{index}].probe",
                        item.probe.contract,
                        item.probe.values,
                        self.contract,
                    )
                )
            except DomainError as exc:
                probes.append(exc)
                continue
            if item.customer_id not in references:
                cached = self.templates.get(org_id, item.customer_id)
                if cached is not None:
                    references[item.customer_id] = OpenedReference(
                        cached.enrollment_id, cached.source, cached.vector.copy()
                    )
        wanted = [
            item.customer_id
            for item, probe in zip(items, probes, strict=True)
            if not isinstance(probe, DomainError) and item.customer_id not in references
        ]
        if wanted:
            references.update(await self._open_references(org_id, wanted))
        results: list[VerifyResult | DomainError] = []
        for item, probe in zip(items, probes, strict=True):
            reference = probe if isinstance(probe, DomainError) else references[item.customer_id]
            if isinstance(reference, DomainError):
                results.append(reference)
                continue
            assert isinstance(probe, np.ndarray)
            results.append(
                self._score(
                    probe,
                    reference.vector,
                    applied,
                    reference.enrollment_id,
                    reference.source,
                    reference.source,
                )
            )
        return results

    # --- 1:N -------------------------------------------------------------------

    async def search(
        self,
        org_id: str,
        probe: EmbeddingInput,
        top_k: int,
        min_score: float,
        exclude_customer_id: str,
        threshold: float | None = None,
    ) -> SearchResult:
        """Hits at or above `min_score`, or (min_score 0) the organisation's
        `threshold` (None = the deployment's default)."""
        vector = validate_embedding("probe", probe.contract, probe.values, self.contract)
        applied = self.profile.threshold(threshold)
        if top_k < 0 or top_k > MAX_TOP_K:
            raise invalid_field("top_k", f"must be between 0 and {MAX_TOP_K}")
        if not -1.0 <= min_score <= 1.0 or not np.isfinite(min_score):
            raise invalid_field("min_score", "must be a cosine in [-1, 1]")
        if exclude_customer_id:
            validate_id("exclude_customer_id", exclude_customer_id)
        floor = applied if min_score == 0.0 else min_score
        return await self._search(
            org_id, vector, top_k or DEFAULT_TOP_K, floor, exclude_customer_id
        )

    async def _search(
        self,
        org_id: str,
        vector: np.ndarray,
        top_k: int,
        floor: float,
        exclude_customer_id: str,
    ) -> SearchResult:
        # Over-fetch: the excluded customer and references retired on another
        # replica (not yet caught up) may take places in the raw result.
        fetch = min(2 * top_k + 2, 4 * MAX_TOP_K)
        raw, kind, size = await asyncio.to_thread(self.gallery.search, org_id, vector, fetch)
        candidates = [h for h in raw if h.customer_id != exclude_customer_id]

        live = await self.database.run(
            lambda s: self.store.live_enrollments(s, org_id, [h.enrollment_id for h in candidates])
        )
        hits = [h for h in candidates if h.enrollment_id in live and h.score >= floor][:top_k]
        return SearchResult(hits=hits, index_kind=kind, gallery_size=size)

    # --- enrollment ----------------------------------------------------------------

    async def enroll(
        self,
        org_id: str,
        customer_id: str,
        embedding: EmbeddingInput,
        source: str,
        verification_id: str,
        search_duplicates: bool,
        threshold: float | None = None,
        quality: float | None = None,
        supersedes: str = "",
    ) -> EnrollOutcome:
        """Duplicates are other customers at or above the organisation's
        `threshold` (None = the deployment's default). A reference that has
        duplicates is stored inactive: it waits for an analyst's decision and
        is neither matched nor found meanwhile."""
        validate_id("customer_id", customer_id)
        applied = self.profile.threshold(threshold)
        if source not in SOURCE_PRIORITY:
            raise invalid_field("source", f"must be one of {', '.join(SOURCE_PRIORITY)}")
        if verification_id:
            validate_id("verification_id", verification_id)
        validate_quality(quality)
        if supersedes:
            validate_id("supersedes_enrollment_id", supersedes)
        vector = validate_embedding(
            "embedding", embedding.contract, embedding.values, self.contract
        )
        duplicates: list[Hit] = []
        if search_duplicates:
            duplicates = (
                await self._search(org_id, vector, DEFAULT_TOP_K, applied, customer_id)
            ).hits
        result = await self.database.run(
            lambda s: self.store.enroll(
                s,
                org_id,
                customer_id,
                source,
                verification_id,
                vector,
                hold=bool(duplicates),
                quality=quality,
                supersedes=supersedes,
            )
        )
        self.templates.invalidate(org_id, [customer_id])
        # Off the event loop: an ivf gallery may retrain on this insert.
        await asyncio.to_thread(self.gallery.apply, org_id, result.changes)
        metrics.ENROLLMENTS.labels(source).inc()
        return EnrollOutcome(record=result.record, duplicates=duplicates)

    async def list_enrollments(
        self, org_id: str, customer_id: str, include_retired: bool
    ) -> list[EnrollmentRecord]:
        validate_id("customer_id", customer_id)
        return await self.database.run(
            lambda s: self.store.list(s, org_id, customer_id, include_retired)
        )

    async def retire(
        self, org_id: str, customer_id: str, reason: str, enrollment_id: str = ""
    ) -> int:
        validate_id("customer_id", customer_id)
        if enrollment_id:
            validate_id("enrollment_id", enrollment_id)
        if reason not in RETIRE_REASONS:
            raise invalid_field("reason", f"must be one of {', '.join(RETIRE_REASONS)}")
        changes = await self.database.run(
            lambda s: self.store.retire(s, org_id, customer_id, reason, enrollment_id)
        )
        self.templates.invalidate(org_id, [customer_id])
        await asyncio.to_thread(self.gallery.apply, org_id, changes)
        return len(changes)

    async def activate(self, org_id: str, customer_id: str, enrollment_id: str) -> EnrollmentRecord:
        """A held reference made active (an analyst approved it)."""
        validate_id("customer_id", customer_id)
        validate_id("enrollment_id", enrollment_id)
        result = await self.database.run(
            lambda s: self.store.activate(s, org_id, customer_id, enrollment_id)
        )
        self.templates.invalidate(org_id, [customer_id])
        await asyncio.to_thread(self.gallery.apply, org_id, result.changes)
        return result.record

    async def shred(self, org_id: str, customer_id: str) -> ShredOutcome:
        validate_id("customer_id", customer_id)
        destroyed, when, changes = await self.database.run(
            lambda s: self.store.shred(s, org_id, customer_id)
        )
        self.templates.invalidate(org_id, [customer_id])
        await asyncio.to_thread(self.gallery.apply, org_id, changes)
        log.info("customer key shredded", destroyed_key_count=destroyed)
        return ShredOutcome(destroyed_key_count=destroyed, shredded_at=when)

    # --- replica convergence ----------------------------------------------------------

    async def catch_up(self) -> int:
        """Apply every organisation's changes above this replica's high-water
        mark; returns how many rows were applied."""
        heads = await self.database.run(self.store.gallery_heads)
        applied = 0
        for org_id, head in heads.items():
            after = self.gallery.high_water.get(org_id, -1)
            if head <= after:
                continue
            stats: dict[str, int] = {}

            def load(
                session: Session,
                org_id: str = org_id,
                after: int = after,
                head: int = head,
                stats: dict[str, int] = stats,
            ) -> list[GalleryEntry]:
                return list(self.store.changes_since(session, org_id, after, head, stats))

            entries: list[GalleryEntry] = await self.database.run(load)
            # Other replicas' and tools' changes (erasure, retirement, breach
            # revocation, re-enrollment) reach the template cache here.
            self.templates.invalidate(org_id, {entry.customer_id for entry in entries})
            await asyncio.to_thread(self.gallery.apply, org_id, entries)
            self.gallery.high_water[org_id] = head
            applied += len(entries)
            if stats.get("unreadable"):
                log.warning(
                    "references left out of the gallery: they cannot be opened",
                    count=stats["unreadable"],
                )
        return applied

    async def rebuild(self) -> None:
        started = time.perf_counter()
        applied = await self.catch_up()
        log.info(
            "gallery rebuilt from the database",
            rows=applied,
            references=self.gallery.total_size(),
            contract=self.contract.describe(),
            seconds=round(time.perf_counter() - started, 2),
        )

    async def run_sync(self, interval_seconds: float) -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await self.catch_up()
            except Exception:  # noqa: BLE001 - keep serving; the next round retries
                log.exception("gallery catch-up failed; retrying next interval")
