"""The pq_rerank 1:N index on a database-backed gallery, on both databases:
it switches in at MATCHING_IVF_MIN_GALLERY_SIZE, finds enrolled customers with
exact scores, never returns an erased customer, follows re-enrollment, and a
second replica that rebuilds from the database (and catches up on the first
replica's changes) agrees. Bad settings are refused at start."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from identity_runtime.settings import SettingsError, load_settings
from services.matching.bootstrap import MatchingCore, build
from services.matching.contract import EmbeddingContract
from services.matching.engine import EmbeddingInput, MatchingEngine
from services.matching.settings import MatchingSettings
from tests.support.matching import env, near, unit

pytestmark = pytest.mark.integration

CONTRACT = EmbeddingContract("sface-2021dec", "", 128)
ORG = "org_pq"
CUSTOMERS = 260
SWITCH_AT = 200
PQ = {"MATCHING_INDEX_KIND": "pq_rerank", "MATCHING_IVF_MIN_GALLERY_SIZE": str(SWITCH_AT)}


async def replica(database_url: str) -> MatchingCore:
    return await build(load_settings(MatchingSettings, "MATCHING", env(database_url, **PQ)))


def emb(vector: np.ndarray) -> EmbeddingInput:
    return EmbeddingInput(CONTRACT, vector.tolist())


async def enroll(engine: MatchingEngine, customer_id: str, face: np.ndarray) -> None:
    await engine.enroll(ORG, customer_id, emb(face), "dukcapil", "", False)


async def best(
    engine: MatchingEngine, probe: np.ndarray, top_k: int = 1
) -> list[tuple[str, float]]:
    result = await engine.search(ORG, emb(probe), top_k, -1.0, "")
    assert result.index_kind == "pq_rerank"
    return [(h.customer_id, h.score) for h in result.hits]


@pytest.fixture
async def core(database_url: str) -> AsyncIterator[MatchingCore]:
    built = await replica(database_url)
    yield built
    await built.close()


async def test_pq_rerank_switches_in_finds_removes_and_replaces(
    core: MatchingCore, database_url: str
) -> None:
    engine = core.engine
    rng = np.random.default_rng(7)
    faces = [unit(128, rng) for _ in range(CUSTOMERS)]
    for i, face in enumerate(faces[: SWITCH_AT - 1]):
        await enroll(engine, f"cus_{i}", face)
    small = await engine.search(ORG, emb(faces[3]), 1, -1.0, "")
    assert small.index_kind == "exact" and small.gallery_size == SWITCH_AT - 1
    for i, face in enumerate(faces[SWITCH_AT - 1 :], start=SWITCH_AT - 1):
        await enroll(engine, f"cus_{i}", face)

    # Another photo of each of 40 customers finds that customer first, with the exact cosine.
    for i in range(0, CUSTOMERS, CUSTOMERS // 40):
        probe = near(faces[i], 0.7, rng)
        (customer, score), *_ = await best(engine, probe)
        assert customer == f"cus_{i}"
        assert score == pytest.approx(float(probe @ faces[i]), abs=2e-3)  # fp16 templates

    # Erasure: the customer is never returned, even when every hit is asked for.
    await engine.shred(ORG, "cus_5")
    assert "cus_5" not in {c for c, _ in await best(engine, faces[5], 100)}

    # Re-enrollment with a new face: found by the new face, no longer by the old one.
    renewed = unit(128, rng)
    await enroll(engine, "cus_9", renewed)
    assert (await best(engine, renewed))[0][0] == "cus_9"
    assert "cus_9" not in {c for c, _ in await best(engine, faces[9], 10)}

    # A replica rebuilt from the database agrees, and catches up on later changes.
    other = await replica(database_url)
    try:
        assert (await best(other.engine, faces[17]))[0][0] == "cus_17"
        assert "cus_5" not in {c for c, _ in await best(other.engine, faces[5], 100)}
        assert (await best(other.engine, renewed))[0][0] == "cus_9"
        await engine.shred(ORG, "cus_17")
        await other.engine.catch_up()
        assert "cus_17" not in {c for c, _ in await best(other.engine, faces[17], 100)}
    finally:
        await other.close()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"MATCHING_INDEX_KIND": "hnsw"}, "MATCHING_INDEX_KIND='hnsw': must be one of"),
        ({"MATCHING_RERANK_FACTOR": "0"}, "MATCHING_RERANK_FACTOR"),
        ({"MATCHING_RERANK_FACTOR": "5000"}, "MATCHING_RERANK_FACTOR"),
        (
            {"MATCHING_INDEX_KIND": "pq_rerank", "MATCHING_DIMENSION": "100"},
            "pq_rerank needs a dimension divisible by 8",
        ),
    ],
)
def test_bad_index_settings_are_refused_at_start(
    extra: dict[str, str], message: str, sqlite_url: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(MatchingSettings, "MATCHING", env(sqlite_url, **extra))


def test_pq_rerank_settings_load(sqlite_url: str) -> None:
    settings = load_settings(
        MatchingSettings, "MATCHING", env(sqlite_url, **PQ, MATCHING_RERANK_FACTOR="20")
    )
    assert settings.index_kind == "pq_rerank" and settings.rerank_factor == 20
    # The default: pq_rerank, exact below 50,000 references, factor 10.
    default = load_settings(MatchingSettings, "MATCHING", env(sqlite_url))
    assert (default.index_kind, default.ivf_min_gallery_size, default.rerank_factor) == (
        "pq_rerank",
        50_000,
        10,
    )
