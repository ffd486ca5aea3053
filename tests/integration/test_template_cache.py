"""The opened-template cache of 1:1 verification, on both databases: Verify
serves a customer's reference from memory once opened, and every change of
that reference - erasure, re-enrollment, retirement, activation, and the same
changes made by another replica or by breach revocation (seen at catch-up) -
drops and wipes the cached copy, so Verify answers from the database again."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
from sqlalchemy import event

from identity_crypto.errors import KeyDestroyed
from identity_runtime.errors import FailedPrecondition
from identity_runtime.settings import load_settings
from services.matching.bootstrap import MatchingCore, build
from services.matching.breach import revoke_templates
from services.matching.contract import EmbeddingContract
from services.matching.engine import BatchItem, EmbeddingInput, MatchingEngine
from services.matching.settings import MatchingSettings
from tests.support.matching import env, near, unit

pytestmark = pytest.mark.integration

CONTRACT = EmbeddingContract("sface-2021dec", "", 128)
ORG = "org_cache"


async def replica(database_url: str, **extra: str) -> MatchingCore:
    return await build(load_settings(MatchingSettings, "MATCHING", env(database_url, **extra)))


@pytest.fixture
async def core(database_url: str) -> AsyncIterator[MatchingCore]:
    built = await replica(database_url)
    yield built
    await built.close()


def emb(vector: np.ndarray) -> EmbeddingInput:
    return EmbeddingInput(CONTRACT, vector.tolist())


async def enroll(engine: MatchingEngine, customer_id: str, face: np.ndarray, source="dukcapil"):
    return (await engine.enroll(ORG, customer_id, emb(face), source, "", False)).record


class Statements:
    """Counts the reads of sealed templates a database runs (to see a cache hit;
    background work such as the retention sweep reads no template)."""

    def __init__(self, core: MatchingCore):
        self.count = 0
        event.listen(core.database.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "sealed_template" in statement:
            self.count += 1


async def test_a_verified_reference_is_served_from_memory(core: MatchingCore) -> None:
    engine = core.engine
    rng = np.random.default_rng(1)
    face = unit(128, rng)
    record = await enroll(engine, "cus_1", face)
    statements = Statements(core)
    first = await engine.verify(ORG, emb(near(face, 0.8, rng)), "cus_1", None)
    read_once = statements.count
    assert read_once > 0 and len(engine.templates) == 1
    second = await engine.verify(ORG, emb(near(face, 0.8, rng)), "cus_1", None)
    assert statements.count == read_once  # no database read for the cached reference
    assert first.enrollment_id == second.enrollment_id == record.enrollment_id
    assert first.match and second.match and abs(second.score - 0.8) < 0.01
    # The cache is keyed by organisation: another organisation's customer of the same id
    # is not served from it.
    with pytest.raises(FailedPrecondition) as caught:
        await engine.verify("org_other", emb(face), "cus_1", None)
    assert caught.value.reason == "NO_ACTIVE_ENROLLMENT"
    assert "cus_1" not in repr(engine.templates) and "cus_1" not in repr(
        engine.templates.get(ORG, "cus_1")
    )


async def test_erasure_drops_and_wipes_the_cached_reference(core: MatchingCore) -> None:
    engine = core.engine
    rng = np.random.default_rng(2)
    face = unit(128, rng)
    await enroll(engine, "cus_erase", face)
    await enroll(engine, "cus_keep", unit(128, rng))
    assert (await engine.verify(ORG, emb(face), "cus_erase", None)).match
    await engine.verify(ORG, emb(face), "cus_keep", None)
    cached = engine.templates.get(ORG, "cus_erase")
    assert cached is not None and np.any(cached.vector)
    await engine.shred(ORG, "cus_erase")
    assert engine.templates.get(ORG, "cus_erase") is None
    assert not np.any(cached.vector)  # the plaintext copy was overwritten
    with pytest.raises(KeyDestroyed):
        await engine.verify(ORG, emb(face), "cus_erase", None)
    # Other customers' entries stay.
    assert engine.templates.get(ORG, "cus_keep") is not None


async def test_re_enrollment_retirement_and_activation_replace_the_cached_reference(
    core: MatchingCore,
) -> None:
    engine = core.engine
    rng = np.random.default_rng(3)
    old, new, held = unit(128, rng), unit(128, rng), unit(128, rng)
    await enroll(engine, "cus_r", old, "onboarding_selfie")
    assert (await engine.verify(ORG, emb(old), "cus_r", None)).score > 0.99
    # Re-enrollment with a source that takes over: Verify now compares with the new face.
    newer = await enroll(engine, "cus_r", new)
    replaced = await engine.verify(ORG, emb(new), "cus_r", None)
    assert replaced.enrollment_id == newer.enrollment_id and replaced.score > 0.99
    assert (await engine.verify(ORG, emb(old), "cus_r", None)).score < 0.5
    # A held reference made active by an analyst replaces the cached one too.
    # (Stored held as Enroll does when it finds duplicates.)
    pending = await core.database.run(
        lambda s: engine.store.enroll(s, ORG, "cus_r", "dukcapil", "", held, hold=True)
    )
    assert (await engine.verify(ORG, emb(held), "cus_r", None)).score < 0.5  # still `new`
    await engine.activate(ORG, "cus_r", pending.record.enrollment_id)
    activated = await engine.verify(ORG, emb(held), "cus_r", None)
    assert activated.enrollment_id == pending.record.enrollment_id and activated.score > 0.99
    # Retirement: nothing left to verify against.
    await engine.retire(ORG, "cus_r", "review")
    with pytest.raises(FailedPrecondition) as caught:
        await engine.verify(ORG, emb(held), "cus_r", None)
    assert caught.value.reason == "NO_ACTIVE_ENROLLMENT"


async def test_changes_on_another_replica_and_breach_revocation_reach_the_cache_at_catch_up(
    core: MatchingCore, database_url: str
) -> None:
    other = await replica(database_url)
    try:
        rng = np.random.default_rng(4)
        faces = {c: unit(128, rng) for c in ("cus_a", "cus_b", "cus_c")}
        for customer_id, face in faces.items():
            await enroll(core.engine, customer_id, face)
        for customer_id, face in faces.items():
            assert (await core.engine.verify(ORG, emb(face), customer_id, None)).match
        # Erased and re-enrolled through the other replica.
        await other.engine.shred(ORG, "cus_a")
        fresh = unit(128, rng)
        await enroll(other.engine, "cus_b", fresh)
        await core.engine.catch_up()
        with pytest.raises(KeyDestroyed):
            await core.engine.verify(ORG, emb(faces["cus_a"]), "cus_a", None)
        assert (await core.engine.verify(ORG, emb(fresh), "cus_b", None)).score > 0.99
        # Breach revocation (the `identity breach` tool, outside any replica).
        await core.engine.verify(ORG, emb(faces["cus_c"]), "cus_c", None)
        assert core.engine.templates.get(ORG, "cus_c") is not None
        revoke_templates(core.database, ORG)
        await core.engine.catch_up()
        assert core.engine.templates.get(ORG, "cus_c") is None
        # Revoked (not erased): no reference left, and the customer may enroll again.
        with pytest.raises(FailedPrecondition) as caught:
            await core.engine.verify(ORG, emb(faces["cus_c"]), "cus_c", None)
        assert caught.value.reason == "NO_ACTIVE_ENROLLMENT"
    finally:
        await other.close()


async def test_a_disabled_cache_reads_the_database_on_every_verify(database_url: str) -> None:
    core = await replica(database_url, MATCHING_TEMPLATE_CACHE_SIZE="0")
    try:
        rng = np.random.default_rng(5)
        face = unit(128, rng)
        await enroll(core.engine, "cus_1", face)
        statements = Statements(core)
        await core.engine.verify(ORG, emb(face), "cus_1", None)
        once = statements.count
        await core.engine.verify(ORG, emb(face), "cus_1", None)
        assert once > 0 and statements.count == 2 * once and len(core.engine.templates) == 0
    finally:
        await core.close()


async def test_batch_verify_mixes_results_and_refusals_and_uses_the_cache(
    core: MatchingCore,
) -> None:
    engine = core.engine
    rng = np.random.default_rng(6)
    faces = [unit(128, rng) for _ in range(3)]
    for i, face in enumerate(faces):
        await enroll(engine, f"cus_{i}", face)
    await engine.shred(ORG, "cus_2")
    items = [
        BatchItem("cus_0", emb(near(faces[0], 0.8, rng))),
        BatchItem("cus_1", emb(unit(128, rng))),
        BatchItem("cus_unknown", emb(faces[0])),
        BatchItem("cus_2", emb(faces[2])),
        BatchItem("cus_0", EmbeddingInput(CONTRACT, faces[0][:64].tolist())),
        BatchItem("cus_1", emb(faces[1])),
    ]
    statements = Statements(core)
    outcomes = await engine.verify_batch(ORG, items)
    first_reads = statements.count
    assert [getattr(o, "reason", "result") for o in outcomes] == [
        "result",
        "result",
        "NO_ACTIVE_ENROLLMENT",
        "KEY_DESTROYED",
        "EMBEDDING_INVALID",
        "result",
    ]
    assert outcomes[0].match and not outcomes[1].match and outcomes[5].score > 0.99
    # The opened references are cached: the same pairs again read nothing.
    again = await engine.verify_batch(ORG, [items[0], items[1], items[5]])
    assert statements.count == first_reads
    assert [o.score for o in again] == pytest.approx(
        [outcomes[0].score, outcomes[1].score, outcomes[5].score]
    )
