"""The in-memory FAISS gallery: upserts, removals, and the switch to an IVF index."""

from __future__ import annotations

import numpy as np

from services.matching.gallery import GalleryEntry, OrgGallery


def rows(n: int, d: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_exact_gallery_upserts_and_removes_idempotently() -> None:
    vectors = rows(50, 32, 1)
    gallery = OrgGallery(32)
    gallery.apply(GalleryEntry(f"enr_{i}", f"cus_{i}", v) for i, v in enumerate(vectors))
    gallery.apply([GalleryEntry("enr_3", "cus_3", vectors[3])])  # re-applied: still one entry
    assert gallery.size == 50
    assert [h.enrollment_id for h in gallery.search(vectors[3], 1)] == ["enr_3"]
    gallery.apply([GalleryEntry("enr_3", "cus_3", None), GalleryEntry("enr_3", "cus_3", None)])
    assert gallery.size == 49 and all(
        h.enrollment_id != "enr_3" for h in gallery.search(vectors[3], 49)
    )
    # Replaced vector: the old one is gone, the new one is found.
    gallery.apply([GalleryEntry("enr_4", "cus_4", vectors[5])])
    assert {h.enrollment_id for h in gallery.search(vectors[5], 2)} == {"enr_4", "enr_5"}
    assert gallery.search(vectors[4], 1)[0].enrollment_id != "enr_4"
    # The last change to an id within one batch wins.
    gallery.apply(
        [GalleryEntry("enr_9", "cus_9", None), GalleryEntry("enr_9", "cus_9", vectors[9])]
    )
    assert gallery.search(vectors[9], 1)[0].enrollment_id == "enr_9"


def test_ivf_gallery_trains_at_its_size_and_keeps_supporting_removal() -> None:
    vectors = rows(7000, 32, 2)
    gallery = OrgGallery(32, kind="ivf", ivf_min_size=1000, nprobe=64)
    gallery.apply(GalleryEntry(f"enr_{i}", f"cus_{i}", v) for i, v in enumerate(vectors[:500]))
    assert gallery.index_kind == "exact"
    gallery.apply(
        GalleryEntry(f"enr_{i}", f"cus_{i}", v) for i, v in enumerate(vectors[500:1500], start=500)
    )
    assert gallery.index_kind == "ivf" and gallery.size == gallery.trained_size == 1500
    found = sum(
        gallery.search(vectors[i], 1)[0].enrollment_id == f"enr_{i}" for i in range(0, 1500, 50)
    )
    assert found == 30  # a stored vector is its own nearest neighbour
    gallery.apply([GalleryEntry("enr_100", "cus_100", None)])
    assert all(h.enrollment_id != "enr_100" for h in gallery.search(vectors[100], 10))
    # Growth past four times the trained size retrains, keeping every vector.
    gallery.apply(
        GalleryEntry(f"enr_{i}", f"cus_{i}", v) for i, v in enumerate(vectors[1500:], start=1500)
    )
    assert gallery.size == gallery.trained_size == 6999 and gallery.index_kind == "ivf"
    assert gallery.search(vectors[5000], 1)[0].enrollment_id == "enr_5000"
    assert gallery.search(vectors[1200], 1)[0].enrollment_id == "enr_1200"
    assert all(h.enrollment_id != "enr_100" for h in gallery.search(vectors[100], 10))
