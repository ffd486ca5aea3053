"""The in-memory 1:N gallery: one FAISS index per organisation.

Vectors are unit length, so inner product is cosine. `exact` is a flat
inner-product index (IndexIDMap2 over IndexFlatIP): every search is
exhaustive and recall is 1. `ivf` switches an organisation's gallery to an
inverted-file index (IndexIVFFlat, nlist ~ 4 sqrt(n), `nprobe` lists per
search) once it holds `ivf_min_size` vectors; it is retrained when the
gallery has grown fourfold since the last training. Both support removal
by id, which retirement and shredding need.

The database is the source of truth; this is a cache of decrypted active
references that `MatchingEngine` fills at start and keeps current. Each
organisation's index is guarded by a lock (FAISS indexes are not safe for a
write concurrent with a search).
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


class OrgGallery:
    def __init__(
        self,
        dimension: int,
        kind: str = "exact",
        ivf_min_size: int = IVF_MIN_GALLERY_SIZE,
        nprobe: int = IVF_NPROBE,
    ):
        self.dimension = dimension
        self.kind = kind
        self.ivf_min_size = ivf_min_size
        self.nprobe = nprobe
        self._index: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
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
            if add_labels:
                self._index.add_with_ids(
                    np.vstack(add_vectors), np.asarray(add_labels, dtype=np.int64)
                )
            self._maybe_retrain()

    def search(self, vector: np.ndarray, k: int) -> list[Hit]:
        with self._lock:
            if self.size == 0 or k <= 0:
                return []
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

    def _all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        labels = np.asarray(sorted(self._entry_of), dtype=np.int64)
        if not len(labels):
            return np.zeros((0, self.dimension), np.float32), labels
        return np.vstack([self._index.reconstruct(int(label)) for label in labels]), labels

    def _maybe_retrain(self) -> None:
        if self.kind != "ivf" or self.size < self.ivf_min_size:
            return
        if self._index_kind == "ivf" and self.size < 4 * self._trained_size:
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
