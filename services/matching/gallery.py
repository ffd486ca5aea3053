"""The in-memory 1:N gallery: one FAISS index per organisation.

Vectors are unit length, so inner product is cosine. `exact` is a flat
inner-product index (IndexIDMap2 over IndexFlatIP): every search is
exhaustive and recall is 1. `ivf` switches an organisation's gallery to an
inverted-file index (IndexIVFFlat, nlist ~ 4 sqrt(n), `nprobe` lists per
search) once it holds `ivf_min_size` vectors; it is retrained when the
gallery has grown fourfold since the last training. Both support removal
by id, which retirement and shredding need.

`pq_rerank` keeps the exact flat index as the store of the float vectors and,
once the gallery holds `ivf_min_size` vectors, adds a candidate index beside
it: product-quantised codes (IndexPQFastScan, d/8 sub-quantisers of 4 bits,
d/16 bytes a vector) under an IndexIDMap with the same labels. A search
scans every code (no inverted lists to miss), takes the best
`k x rerank_factor` (at least 100) live candidates, reads their float vectors from the flat
store and re-ranks them by exact cosine, so scores are exact and recall
depends only on whether the true neighbours are among the candidates.

Removal: the flat store removes by id as for `exact`; the codes are not
touched (faiss 1.15's IndexPQFastScan corrupts codes added after a
`remove_ids`). A removed label is dead: it is never re-used, it has no owner
and no float vector, and a search asks for that many plus `dead`
candidates and drops dead ones before the re-rank, so a retired or shredded
vector is never returned and the live candidates are exactly those a freshly
built index would give. When more than `PQ_MAX_DEAD` labels are dead, the
codes are rebuilt from the live vectors with the same quantiser. The
quantiser is retrained, like ivf, when the gallery has grown fourfold.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import faiss
import numpy as np


@dataclass(frozen=True)
class GalleryEntry:
    enrollment_id: str
    customer_id: str
    # None removes the entry (retired, superseded, shredded).
    vector: np.ndarray | None


@dataclass(frozen=True)
class Hit:
    enrollment_id: str
    customer_id: str
    score: float


# An ivf gallery stays exact below this size; inverted lists one ivf search visits
# (the MATCHING_IVF_* defaults).
IVF_MIN_GALLERY_SIZE = 50_000
IVF_NPROBE = 128
# Candidates a pq_rerank search re-ranks exactly, per requested hit (MATCHING_RERANK_FACTOR).
RERANK_FACTOR = 10
# Vectors a pq_rerank quantiser is trained on (a sample of larger galleries).
PQ_TRAIN_SAMPLE = 65_536
INDEX_KINDS = ("exact", "ivf", "pq_rerank")
# Fewest candidates a pq_rerank search re-ranks (a top-1 dedupe search still gets 100).
PQ_MIN_CANDIDATES = 100
# Removed labels a pq_rerank candidate index may still hold before it is rebuilt.
PQ_MAX_DEAD = 1024


class OrgGallery:
    def __init__(
        self,
        dimension: int,
        kind: str = "exact",
        ivf_min_size: int = IVF_MIN_GALLERY_SIZE,
        nprobe: int = IVF_NPROBE,
        rerank_factor: int = RERANK_FACTOR,
    ):
        if kind not in INDEX_KINDS:
            raise ValueError(f"unknown index kind {kind!r}")
        if kind == "pq_rerank" and dimension % 8:
            raise ValueError("pq_rerank needs a dimension divisible by 8")
        self.dimension = dimension
        self.kind = kind
        self.ivf_min_size = ivf_min_size
        self.nprobe = nprobe
        self.rerank_factor = rerank_factor
        self._index: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        # pq_rerank's candidate index (codes only), None while the gallery is exact.
        self._candidates: faiss.Index | None = None
        self._codes: faiss.Index | None = None
        self._dead = 0
        self._index_kind = "exact"
        self._trained_size = 0
        self._label_of: dict[str, int] = {}
        self._entry_of: dict[int, tuple[str, str]] = {}
        self._next_label = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return len(self._label_of)

    @property
    def index_kind(self) -> str:
        return self._index_kind

    @property
    def trained_size(self) -> int:
        """Gallery size at the last ivf training (0 while exact)."""
        return self._trained_size

    def apply(self, entries: Iterable[GalleryEntry]) -> None:
        """Upsert and remove in one step (idempotent: re-applying is harmless)."""
        latest: dict[str, GalleryEntry] = {}
        for entry in entries:
            latest[entry.enrollment_id] = entry
        with self._lock:
            remove: list[int] = []
            add_vectors: list[np.ndarray] = []
            add_labels: list[int] = []
            for entry in latest.values():
                label = self._label_of.pop(entry.enrollment_id, None)
                if label is not None:
                    self._entry_of.pop(label, None)
                    remove.append(label)
                if entry.vector is None:
                    continue
                label = self._next_label
                self._next_label += 1
                self._label_of[entry.enrollment_id] = label
                self._entry_of[label] = (entry.enrollment_id, entry.customer_id)
                add_labels.append(label)
                add_vectors.append(np.asarray(entry.vector, dtype=np.float32))
            if remove:
                # faiss's wrapper takes an id array; its stubs give Index only IDSelector.
                self._index.remove_ids(np.asarray(remove, dtype=np.int64))  # type: ignore[arg-type]
                if self._candidates is not None:
                    self._dead += len(remove)
            if add_labels:
                stacked = np.vstack(add_vectors)
                labels = np.asarray(add_labels, dtype=np.int64)
                self._index.add_with_ids(stacked, labels)
                if self._candidates is not None:
                    self._candidates.add_with_ids(stacked, labels)
            self._maybe_retrain()
            if self._dead > PQ_MAX_DEAD:
                self._fill_candidates(retrain=False)

    def search(self, vector: np.ndarray, k: int) -> list[Hit]:
        with self._lock:
            if self.size == 0 or k <= 0:
                return []
            if self._candidates is not None:
                return self._search_rerank(np.asarray(vector, dtype=np.float32), k)
            scores, labels = self._index.search(
                np.asarray(vector, dtype=np.float32).reshape(1, -1), min(k, self.size)
            )
            hits = []
            for score, label in zip(scores[0], labels[0], strict=True):
                owner = self._entry_of.get(int(label))
                if label >= 0 and owner is not None:
                    hits.append(
                        Hit(enrollment_id=owner[0], customer_id=owner[1], score=float(score))
                    )
            return hits

    def _search_rerank(self, vector: np.ndarray, k: int) -> list[Hit]:
        assert self._candidates is not None
        wanted = min(self.size, max(k * self.rerank_factor, PQ_MIN_CANDIDATES)) + self._dead
        _, found = self._candidates.search(vector.reshape(1, -1), wanted)
        labels = np.asarray(
            [label for label in found[0] if label >= 0 and int(label) in self._entry_of],
            dtype=np.int64,
        )
        if not len(labels):
            return []
        # Exact cosine against the stored float vectors (the flat store, by label).
        scores = self._index.reconstruct_batch(labels) @ vector.reshape(-1)
        top = np.argsort(-scores, kind="stable")[:k]
        hits = []
        for at in top:
            owner = self._entry_of.get(int(labels[at]))
            if owner is not None:
                hits.append(
                    Hit(enrollment_id=owner[0], customer_id=owner[1], score=float(scores[at]))
                )
        return hits

    def _all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        labels = np.asarray(sorted(self._entry_of), dtype=np.int64)
        if not len(labels):
            return np.zeros((0, self.dimension), np.float32), labels
        return self._index.reconstruct_batch(labels), labels

    def _maybe_retrain(self) -> None:
        if self.kind == "exact" or self.size < self.ivf_min_size:
            return
        if self._index_kind == self.kind and self.size < 4 * self._trained_size:
            return
        if self.kind == "pq_rerank":
            self._train_candidates()
            return
        vectors, labels = self._all_vectors()
        nlist = int(min(65_536, max(16, 4 * math.sqrt(len(labels)))))
        quantizer = faiss.IndexFlatIP(self.dimension)
        index = faiss.IndexIVFFlat(quantizer, self.dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        # A hash-table direct map lets the next retraining reconstruct by id.
        # (faiss's stubs declare neither DirectMap nor SWIG's `this` below.)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
        index.add_with_ids(vectors, labels)
        index.nprobe = self.nprobe
        index.own_fields = True
        quantizer.this.disown()  # type: ignore[attr-defined]
        self._index = index
        self._index_kind = "ivf"
        self._trained_size = len(labels)

    def _train_candidates(self) -> None:
        self._fill_candidates(retrain=True)

    def _fill_candidates(self, *, retrain: bool) -> None:
        """(Re)build the codes of every live vector; the flat store stays as it is."""
        vectors, labels = self._all_vectors()
        codes = self._codes
        if retrain or codes is None:
            codes = faiss.IndexPQFastScan(
                self.dimension, self.dimension // 8, 4, faiss.METRIC_INNER_PRODUCT
            )
            sample = vectors
            if len(vectors) > PQ_TRAIN_SAMPLE:
                rng = np.random.default_rng(len(vectors))
                sample = vectors[rng.choice(len(vectors), PQ_TRAIN_SAMPLE, replace=False)]
            codes.train(sample)
            self._trained_size = len(labels)
        else:
            codes.reset()
        candidates = faiss.IndexIDMap(codes)
        candidates.add_with_ids(vectors, labels)
        self._codes = codes
        self._candidates = candidates
        self._dead = 0
        self._index_kind = "pq_rerank"


class Gallery:
    """Every organisation's gallery, with the change number each has caught up to."""

    def __init__(self, new_org: Callable[[], OrgGallery]):
        # Makes an organisation's gallery (all alike), e.g.
        # functools.partial(OrgGallery, dimension, "ivf").
        self._new_org = new_org
        self._orgs: dict[str, OrgGallery] = {}
        # Highest gallery change number applied per organisation (-1: none yet).
        self.high_water: dict[str, int] = {}
        self._lock = threading.Lock()

    def org(self, org_id: str) -> OrgGallery:
        with self._lock:
            gallery = self._orgs.get(org_id)
            if gallery is None:
                gallery = self._new_org()
                self._orgs[org_id] = gallery
            return gallery

    def apply(self, org_id: str, entries: Iterable[GalleryEntry]) -> None:
        self.org(org_id).apply(entries)

    def search(self, org_id: str, vector: np.ndarray, k: int) -> tuple[list[Hit], str, int]:
        """(hits best first, index kind, gallery size)."""
        gallery = self.org(org_id)
        return gallery.search(vector, k), gallery.index_kind, gallery.size

    def total_size(self) -> int:
        with self._lock:
            return sum(g.size for g in self._orgs.values())
