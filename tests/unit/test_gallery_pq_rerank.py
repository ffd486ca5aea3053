"""The pq_rerank gallery: PQ fast-scan candidates re-ranked by exact cosine.

Recall here is a correctness property (the candidate stage must hold the
exact neighbours), checked against a flat exact search on the same vectors
with fixed seeds; no timing is asserted (speed is in
tools/bench/search_scaling.py).
"""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from services.matching import gallery as gallery_module
from services.matching.gallery import GalleryEntry, OrgGallery

DIM = 512


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def clustered(n: int, d: int, seed: int, clusters: int = 200) -> np.ndarray:
    """Unit vectors around `clusters` centres (near-ties within a cluster, like people)."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((clusters, d)))
    members = centres[rng.integers(0, clusters, n)]
    return unit(members + 0.9 * unit(rng.standard_normal((n, d))))


def probes_of(gallery: np.ndarray, count: int, seed: int, cosine: float = 0.8) -> np.ndarray:
    """Gallery members seen again (another photo): unit vectors at `cosine` from them."""
    rng = np.random.default_rng(seed)
    base = gallery[rng.choice(len(gallery), count, replace=False)]
    noise = rng.standard_normal(base.shape).astype(np.float32)
    noise -= np.sum(noise * base, axis=1, keepdims=True) * base
    return unit(cosine * base + np.sqrt(1 - cosine**2) * unit(noise))


def filled(vectors: np.ndarray, **kwargs: int) -> OrgGallery:
    gallery = OrgGallery(vectors.shape[1], kind="pq_rerank", **kwargs)
    gallery.apply(GalleryEntry(f"enr_{i}", f"cus_{i}", v) for i, v in enumerate(vectors))
    return gallery


@pytest.fixture(scope="module")
def gallery_20k() -> tuple[np.ndarray, OrgGallery]:
    vectors = clustered(20_000, DIM, 15)
    return vectors, filled(vectors, ivf_min_size=5_000)


def test_recall_against_exact_on_a_clustered_20k_gallery(
    gallery_20k: tuple[np.ndarray, OrgGallery],
) -> None:
    vectors, gallery = gallery_20k
    assert gallery.index_kind == "pq_rerank" and gallery.trained_size == 20_000
    flat = faiss.IndexFlatIP(DIM)
    flat.add(vectors)
    probes = probes_of(vectors, 500, 16)
    exact_scores, exact = flat.search(probes, 10)
    top1 = top10 = 0
    for probe, want, want_scores in zip(probes, exact, exact_scores, strict=True):
        hits = gallery.search(probe, 10)
        got = [int(h.enrollment_id.removeprefix("enr_")) for h in hits]
        top1 += got[0] == want[0]
        top10 += len(set(got) & set(want.tolist()))
        # Scores are exact cosines (the re-rank), not PQ approximations.
        assert hits[0].score == pytest.approx(float(probe @ vectors[got[0]]), abs=1e-5)
        if got[0] == want[0]:
            assert hits[0].score == pytest.approx(float(want_scores[0]), abs=1e-5)
    assert top1 / 500 >= 0.99
    assert top10 / 5000 >= 0.99


def test_without_the_rerank_the_codes_alone_are_worse(
    gallery_20k: tuple[np.ndarray, OrgGallery],
) -> None:
    # Guards the recall test against passing trivially: the PQ codes' own top 10
    # (no exact re-rank) miss exact neighbours on this gallery.
    vectors, gallery = gallery_20k
    flat = faiss.IndexFlatIP(DIM)
    flat.add(vectors)
    probes = probes_of(vectors, 200, 17)
    _, exact = flat.search(probes, 10)
    codes = gallery._candidates
    assert codes is not None
    _, approximate = codes.search(probes, 10)
    overlap = sum(
        len(set(a.tolist()) & set(w.tolist())) for a, w in zip(approximate, exact, strict=True)
    )
    assert overlap / 2000 < 0.95


def test_removal_by_id_is_never_returned_and_reenrollment_replaces() -> None:
    vectors = clustered(6_000, 128, 21, clusters=30)
    gallery = filled(vectors, ivf_min_size=2_000)
    assert gallery.index_kind == "pq_rerank"
    # Erased: a search with its own vector (and with every hit asked for) never returns it.
    gallery.apply([GalleryEntry("enr_42", "cus_42", None), GalleryEntry("enr_43", "cus_43", None)])
    assert gallery.size == 5_998
    for i in (42, 43):
        assert all(h.customer_id != f"cus_{i}" for h in gallery.search(vectors[i], 200))
    # Re-enrolled with a new vector: found by the new one, not by the old.
    new = unit(np.random.default_rng(22).standard_normal(128))
    gallery.apply([GalleryEntry("enr_44b", "cus_44", new), GalleryEntry("enr_44", "cus_44", None)])
    assert gallery.size == 5_998
    best = gallery.search(new, 1)[0]
    assert (best.enrollment_id, best.customer_id) == ("enr_44b", "cus_44")
    assert best.score == pytest.approx(1.0, abs=1e-5)
    assert all(h.enrollment_id != "enr_44" for h in gallery.search(vectors[44], 50))
    # The same enrollment id with a new vector (an upsert) replaces the old vector.
    gallery.apply([GalleryEntry("enr_45", "cus_45", vectors[46])])
    assert {h.enrollment_id for h in gallery.search(vectors[46], 2)} == {"enr_45", "enr_46"}
    assert gallery.search(vectors[45], 1)[0].enrollment_id != "enr_45"
    # Growth past four times the trained size retrains; removals still hold.
    more = clustered(3_000, 128, 23, clusters=30)
    gallery.apply(GalleryEntry(f"enr_x{i}", f"cus_x{i}", v) for i, v in enumerate(more))
    assert gallery.trained_size == 6_000  # 8,998 < 4 x 6,000: not retrained
    assert gallery.search(more[7], 1)[0].enrollment_id == "enr_x7"
    assert all(h.customer_id != "cus_42" for h in gallery.search(vectors[42], 200))


def test_retrains_on_growth_and_keeps_every_vector() -> None:
    vectors = clustered(4_500, 128, 31, clusters=20)
    gallery = filled(vectors[:1_000], ivf_min_size=1_000)
    assert gallery.index_kind == "pq_rerank" and gallery.trained_size == 1_000
    gallery.apply([GalleryEntry("enr_5", "cus_5", None)])
    gallery.apply(
        GalleryEntry(f"enr_{i}", f"cus_{i}", v) for i, v in enumerate(vectors[1_000:], start=1_000)
    )
    assert gallery.size == gallery.trained_size == 4_499
    for i in (0, 999, 1_000, 4_499):
        assert gallery.search(vectors[i], 1)[0].enrollment_id == f"enr_{i}"
    assert all(h.enrollment_id != "enr_5" for h in gallery.search(vectors[5], 100))


def test_small_gallery_stays_exact() -> None:
    vectors = clustered(300, 32, 41, clusters=5)
    gallery = filled(vectors, ivf_min_size=1_000)
    assert gallery.index_kind == "exact" and gallery.trained_size == 0
    assert gallery.search(vectors[7], 1)[0].enrollment_id == "enr_7"


def test_bad_kind_and_dimension_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown index kind"):
        OrgGallery(32, kind="hnsw")
    with pytest.raises(ValueError, match="divisible by 8"):
        OrgGallery(36, kind="pq_rerank")


def test_dead_labels_past_the_limit_rebuild_the_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gallery_module, "PQ_MAX_DEAD", 10)
    vectors = clustered(3_000, 128, 51, clusters=20)
    gallery = filled(vectors, ivf_min_size=1_000)
    gallery.apply(GalleryEntry(f"enr_{i}", f"cus_{i}", None) for i in range(10))
    assert gallery._dead == 10  # at the limit: dead labels filtered, codes kept
    assert all(h.enrollment_id != "enr_3" for h in gallery.search(vectors[3], 300))
    gallery.apply([GalleryEntry("enr_10", "cus_10", None)])
    assert gallery._dead == 0 and gallery.size == 2_989
    assert gallery._candidates is not None and gallery._candidates.ntotal == 2_989
    assert gallery.trained_size == 3_000  # rebuilt with the same quantiser, not retrained
    for i in range(11):
        assert all(h.enrollment_id != f"enr_{i}" for h in gallery.search(vectors[i], 300))
    assert gallery.search(vectors[11], 1)[0].enrollment_id == "enr_11"
    assert gallery.search(vectors[2_999], 1)[0].enrollment_id == "enr_2999"
