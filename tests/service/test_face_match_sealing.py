"""Face Match's uploads are sealed at rest in the local bucket (seed 001:
AES-256-GCM; services/face_match/sealing.py): a real gRPC server on SQLite
and PostgreSQL, real uploads through PutObject, the files read and altered on
disk as someone with access to the bucket directory would."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from sqlalchemy import delete, select, update

from identity_platform_api.face_match.v1 import submissions_pb2
from identity_runtime.status import error_info, status_from_rpc_error
from services.face_match.models import DataKey, Submission, Transition
from services.face_match.sealing import MAGIC
from services.face_match.service import SPEC as FACE_MATCH
from services.face_match.worker import purge_images
from tests.service.test_face_match import (
    SAME_PERSON_REFERENCE,
    SELFIE,
    Partner,
    refusal,
    worker,
)
from tests.support import start_service
from tests.support.face_match import env

S = submissions_pb2
# What would show that a file is (or holds) an image.
IMAGE_MARKERS = (b"\xff\xd8\xff", b"JFIF", b"Exif", b"\x89PNG", b"IHDR", b"IDAT", b"WEBP")


@pytest.fixture
async def service(database_url: str, tmp_path: Path):
    server = await start_service(
        FACE_MATCH, env(database_url, tmp_path / "bucket", FACE_MATCH_UPLOAD_MAX_BYTES="3000000")
    )
    yield server
    await server.stop(0)


def path_of(server, submission_id: str, image: str) -> Path:
    return Path(server.core.bucket.directory) / submission_id / image


async def uploaded(partner: Partner, correlation_id: str) -> str:
    created = await partner.create(correlation_id)
    await partner.upload_both(created, SELFIE, SAME_PERSON_REFERENCE)
    return str(created.submission_id)


async def confirm_refusal(partner: Partner, correlation_id: str) -> tuple[str, str, dict]:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await partner.stub.ConfirmSubmission(
            S.ConfirmSubmissionRequest(correlation_id=correlation_id)
        )
    info = error_info(status_from_rpc_error(exc.value))
    assert info is not None
    # The message names the image and the problem, never the bytes.
    assert "selfie" in (exc.value.details() or "") and "\\x" not in (exc.value.details() or "")
    metadata = {k: v for k, v in info.metadata.items() if k in ("image", "refused")}
    return exc.value.code().name, info.reason, metadata


async def state_of(partner: Partner, correlation_id: str):
    return await partner.stub.GetSubmissionStatus(
        S.GetSubmissionStatusRequest(correlation_id=correlation_id)
    )


async def keys_of(server, submission_id: str) -> list[DataKey]:
    return await server.core.database.run(
        lambda s: list(s.scalars(select(DataKey).where(DataKey.customer_id == submission_id)))
    )


async def test_the_bytes_on_disk_are_sealed_and_the_submission_still_matches(service) -> None:
    partner = Partner(service)
    submission_id = await uploaded(partner, "seal-1")
    for image, original in (("selfie", SELFIE), ("reference", SAME_PERSON_REFERENCE)):
        path = path_of(service, submission_id, image)
        stored = path.read_bytes()
        assert stored != original and stored.startswith(MAGIC)
        # No image header where one would start, and no run of the image survives
        # (AES-GCM output of the same length + overhead). A marker anywhere in
        # the ciphertext is chance (3 bytes: about one 100 KB object in 170).
        assert not stored[len(MAGIC) :].startswith(IMAGE_MARKERS), image
        assert original[:16] not in stored and original[100:132] not in stored
        assert len(stored) == len(original) + len(MAGIC) + 29
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # One data key for the submission, held only wrapped by the KEK.
    keys = await keys_of(service, submission_id)
    assert [(k.purpose, k.destroyed_at) for k in keys] == [("image", None)]
    assert keys[0].wrapped_key and keys[0].kek_id == "kek-fm-test"
    # Nothing changes for the partner: confirm, process, MATCH.
    confirmed = await partner.stub.ConfirmSubmission(
        S.ConfirmSubmissionRequest(correlation_id="seal-1")
    )
    assert confirmed.state == S.SUBMISSION_STATE_QUEUED
    assert await worker(service).run_once()
    details = (
        await partner.stub.GetSubmission(S.GetSubmissionRequest(correlation_id="seal-1"))
    ).submission
    assert details.state == S.SUBMISSION_STATE_COMPLETED
    assert details.decision == S.DECISION_MATCH
    await partner.close()


async def _refused_then_reuploaded(
    service, partner: Partner, correlation_id: str, reason: str
) -> None:
    """Confirm refuses the selfie with `reason`; the object is deleted, the
    refusal recorded, and a good upload then completes."""
    assert await confirm_refusal(partner, correlation_id) == (
        "INVALID_ARGUMENT",
        reason,
        {"image": "selfie", "refused": "selfie"},
    )
    status = await state_of(partner, correlation_id)
    assert status.state == S.SUBMISSION_STATE_AWAITING_UPLOAD
    submission_id = (await partner.create(correlation_id)).submission_id
    assert not path_of(service, submission_id, "selfie").exists()
    assert path_of(service, submission_id, "reference").exists()
    rows = await service.core.database.run(
        lambda s: list(
            s.scalars(select(Transition).where(Transition.submission_id == submission_id))
        )
    )
    assert [r.detail for r in rows if r.from_state == r.to_state] == [
        f"upload refused: selfie {reason}"
    ]
    assert not await worker(service).run_once()
    fresh = {u.image: u.url for u in (await partner.create(correlation_id)).uploads}
    await partner.put(fresh["selfie"], SELFIE)
    await partner.stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id=correlation_id))
    assert await worker(service).run_once()
    assert (await state_of(partner, correlation_id)).state == S.SUBMISSION_STATE_COMPLETED


async def test_a_tampered_object_is_refused_at_confirm(service) -> None:
    partner = Partner(service)
    submission_id = await uploaded(partner, "seal-tamper")
    path = path_of(service, submission_id, "selfie")
    stored = bytearray(path.read_bytes())
    stored[len(stored) // 2] ^= 0x01
    path.write_bytes(bytes(stored))
    await _refused_then_reuploaded(service, partner, "seal-tamper", "UPLOAD_SEAL_INVALID")
    await partner.close()


async def test_an_object_moved_from_another_submission_is_refused_at_confirm(service) -> None:
    partner = Partner(service)
    other = await uploaded(partner, "seal-other")
    # Another organisation's submission too: its selfie copied over ours.
    stranger = Partner(service, "org_fm_b")
    foreign = await uploaded(stranger, "seal-foreign")
    target = await uploaded(partner, "seal-moved")
    path = path_of(service, target, "selfie")
    path.write_bytes(path_of(service, other, "selfie").read_bytes())
    await _refused_then_reuploaded(service, partner, "seal-moved", "UPLOAD_SEAL_INVALID")
    target2 = await uploaded(partner, "seal-moved-2")
    path_of(service, target2, "selfie").write_bytes(
        path_of(service, foreign, "selfie").read_bytes()
    )
    await _refused_then_reuploaded(service, partner, "seal-moved-2", "UPLOAD_SEAL_INVALID")
    await partner.close()
    await stranger.close()


async def test_the_reference_moved_to_the_selfie_path_is_refused(service) -> None:
    partner = Partner(service)
    submission_id = await uploaded(partner, "seal-swap")
    path_of(service, submission_id, "selfie").write_bytes(
        path_of(service, submission_id, "reference").read_bytes()
    )
    await _refused_then_reuploaded(service, partner, "seal-swap", "UPLOAD_SEAL_INVALID")
    await partner.close()


async def test_a_plain_object_from_before_sealing_is_refused_at_confirm(service) -> None:
    """A submission uploaded by the release before this one: plain files, no
    data key. Refused clearly; the partner uploads again."""
    partner = Partner(service)
    submission_id = await uploaded(partner, "seal-legacy")
    await service.core.database.run(
        lambda s: s.execute(delete(DataKey).where(DataKey.customer_id == submission_id))
    )
    path_of(service, submission_id, "selfie").write_bytes(SELFIE)
    path_of(service, submission_id, "reference").write_bytes(SAME_PERSON_REFERENCE)
    code, reason, metadata = await confirm_refusal(partner, "seal-legacy")
    assert (code, reason) == ("INVALID_ARGUMENT", "UPLOAD_NOT_SEALED")
    assert metadata == {"image": "selfie", "refused": "selfie,reference"}
    assert not path_of(service, submission_id, "selfie").exists()
    # Uploading both again seals them under a new key; the submission completes.
    created = await partner.create("seal-legacy")
    await partner.upload_both(created, SELFIE, SAME_PERSON_REFERENCE)
    await partner.stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id="seal-legacy"))
    assert await worker(service).run_once()
    assert (await state_of(partner, "seal-legacy")).state == S.SUBMISSION_STATE_COMPLETED
    await partner.close()


async def _lose_key(service, submission_id: str, how: str) -> None:
    """The submission's data key gone as a restore or an operator leaves it:
    the row deleted, or destroyed (crypto-shredded, the row kept)."""
    core = service.core

    def work(session) -> None:
        if how == "deleted":
            session.execute(delete(DataKey).where(DataKey.customer_id == submission_id))
        else:
            core.bucket.seals.destroy(session, "org_fm_a", submission_id)

    await core.database.run(work)


@pytest.mark.parametrize("how", ["deleted", "destroyed"])
async def test_a_sealed_object_whose_key_is_gone_is_refused_as_such_at_confirm(
    service, how
) -> None:
    """Not UPLOAD_NOT_SEALED ("stored before images were sealed"): the objects
    are sealed, their key is what is missing. Refused, deleted, and the
    submission starts again with a new key."""
    partner = Partner(service)
    submission_id = await uploaded(partner, f"seal-keyless-{how}")
    assert path_of(service, submission_id, "selfie").read_bytes().startswith(MAGIC)
    await _lose_key(service, submission_id, how)
    code, reason, metadata = await confirm_refusal(partner, f"seal-keyless-{how}")
    assert (code, reason) == ("FAILED_PRECONDITION", "UPLOAD_KEY_DESTROYED")
    assert metadata == {"image": "selfie", "refused": "selfie,reference"}
    assert not path_of(service, submission_id, "selfie").exists()
    status = await state_of(partner, f"seal-keyless-{how}")
    assert status.state == S.SUBMISSION_STATE_AWAITING_UPLOAD
    rows = await service.core.database.run(
        lambda s: list(
            s.scalars(select(Transition).where(Transition.submission_id == submission_id))
        )
    )
    assert [r.detail for r in rows if r.from_state == r.to_state] == [
        "upload refused: selfie UPLOAD_KEY_DESTROYED",
        "upload refused: reference UPLOAD_KEY_DESTROYED",
    ]
    # Uploading both again seals them under a new, live key; it completes.
    created = await partner.create(f"seal-keyless-{how}")
    await partner.upload_both(created, SELFIE, SAME_PERSON_REFERENCE)
    assert [k.destroyed_at for k in await keys_of(service, submission_id)] == [None]
    await partner.stub.ConfirmSubmission(
        S.ConfirmSubmissionRequest(correlation_id=f"seal-keyless-{how}")
    )
    assert await worker(service).run_once()
    assert (await state_of(partner, f"seal-keyless-{how}")).state == (S.SUBMISSION_STATE_COMPLETED)
    await partner.close()


async def test_where_the_key_went_with_the_submission_its_state_answers(service) -> None:
    """The key goes in the code's own paths only with the submission's state:
    expired (images and key purged at once) stays 400 SUBMISSION_EXPIRED,
    finished and purged confirms unchanged, erased is 404: no seal reason."""
    partner = Partner(service)
    core = service.core
    later = datetime.now(UTC) + timedelta(days=2)
    expired = await uploaded(partner, "seal-gone-expired")
    await core.database.run(
        lambda s: s.execute(
            update(Submission)
            .where(Submission.submission_id == expired)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    )
    assert await core.submissions.expire_due() == 1
    finished = await uploaded(partner, "seal-gone-finished")
    await partner.stub.ConfirmSubmission(
        S.ConfirmSubmissionRequest(correlation_id="seal-gone-finished")
    )
    assert await worker(service).run_once()
    assert await purge_images(core.database, core.bucket, later) == 2
    for submission_id in (expired, finished):
        assert [k.destroyed_at is not None for k in await keys_of(service, submission_id)] == [True]
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await partner.stub.ConfirmSubmission(
            S.ConfirmSubmissionRequest(correlation_id="seal-gone-expired")
        )
    assert refusal(exc) == ("FAILED_PRECONDITION", "SUBMISSION_EXPIRED")
    again = await partner.stub.ConfirmSubmission(
        S.ConfirmSubmissionRequest(correlation_id="seal-gone-finished")
    )
    assert again.state == S.SUBMISSION_STATE_COMPLETED
    await partner.stub.EraseSubmission(
        S.EraseSubmissionRequest(correlation_id="seal-gone-finished")
    )
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await partner.stub.ConfirmSubmission(
            S.ConfirmSubmissionRequest(correlation_id="seal-gone-finished")
        )
    assert refusal(exc) == ("NOT_FOUND", "SUBMISSION_NOT_FOUND")
    await partner.close()


@pytest.mark.parametrize("change", ["tampered", "moved", "plain", "key-deleted", "key-destroyed"])
async def test_an_object_changed_after_confirm_fails_the_submission(
    service, change, capsys
) -> None:
    partner = Partner(service)
    other = await uploaded(partner, f"seal-after-other-{change}")
    submission_id = await uploaded(partner, f"seal-after-{change}")
    correlation_id = f"seal-after-{change}"
    await partner.stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id=correlation_id))
    path = path_of(service, submission_id, "reference")
    if change == "tampered":
        path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    elif change == "moved":
        path.write_bytes(path_of(service, other, "reference").read_bytes())
    elif change == "plain":
        path.write_bytes(SAME_PERSON_REFERENCE)
    else:
        await _lose_key(service, submission_id, change.removeprefix("key-"))
    capsys.readouterr()
    assert await worker(service).run_once()
    # The warning names the image's slot under a key the log scrubber keeps.
    logged = capsys.readouterr()
    (warning,) = [
        line
        for line in (logged.out + logged.err).splitlines()
        if "face_match.object_unreadable" in line
    ]
    # (A lost key fails the first image read, the selfie.)
    assert f"slot={'selfie' if change.startswith('key-') else 'reference'}" in warning
    status = await state_of(partner, correlation_id)
    assert status.state == S.SUBMISSION_STATE_FAILED
    expected = {"tampered": "UPLOAD_SEAL_INVALID", "moved": "UPLOAD_SEAL_INVALID"}.get(
        change, "UPLOAD_NOT_SEALED" if change == "plain" else "UPLOAD_KEY_DESTROYED"
    )
    assert status.failure_reason == expected
    await partner.close()


async def test_erasure_and_purge_leave_nothing_readable(service) -> None:
    partner = Partner(service)
    core = service.core
    # Erasure: the files and the key row go; a copy of the sealed bytes kept
    # elsewhere (a backup) has no key left to open it.
    erased = await uploaded(partner, "seal-erase")
    backup = path_of(service, erased, "selfie").read_bytes()
    seal = await core.database.run(lambda s: core.bucket.seals.for_reading(s, "org_fm_a", erased))
    assert seal is not None and seal.open("selfie", backup) == SELFIE
    await partner.stub.EraseSubmission(S.EraseSubmissionRequest(correlation_id="seal-erase"))
    assert not (Path(core.bucket.directory) / erased).exists()
    assert await keys_of(service, erased) == []
    assert (
        await core.database.run(lambda s: core.bucket.seals.for_reading(s, "org_fm_a", erased))
        is None
    )
    # Image retention: after the purge the key is destroyed (crypto-shredded).
    purged = await uploaded(partner, "seal-purge")
    copy = path_of(service, purged, "reference").read_bytes()
    await partner.stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id="seal-purge"))
    assert await worker(service).run_once()
    assert await purge_images(core.database, core.bucket, datetime.now(UTC) + timedelta(days=2))
    assert not path_of(service, purged, "reference").exists()
    keys = await keys_of(service, purged)
    assert len(keys) == 1 and keys[0].wrapped_key is None and keys[0].destroyed_at is not None
    assert (
        await core.database.run(lambda s: core.bucket.seals.for_reading(s, "org_fm_a", purged))
        is None
    )
    assert copy.startswith(MAGIC) and not any(m in copy for m in IMAGE_MARKERS)
    # The result is kept (retention of results, not images).
    assert (await state_of(partner, "seal-purge")).state == S.SUBMISSION_STATE_COMPLETED
    await partner.close()


async def test_a_directory_where_an_object_should_be_is_a_missing_upload(service) -> None:
    """The re-probe (N2): a directory at an object's path (made in the bucket
    by hand) answered confirm with 500 (IsADirectoryError); it is no object."""
    partner = Partner(service)
    created = await partner.create("seal-dir")
    await partner.upload_both(created, SELFIE, SAME_PERSON_REFERENCE)
    selfie = path_of(service, created.submission_id, "selfie")
    selfie.unlink()
    selfie.mkdir()
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await partner.stub.ConfirmSubmission(S.ConfirmSubmissionRequest(correlation_id="seal-dir"))
    info = error_info(status_from_rpc_error(exc.value))
    assert exc.value.code() == grpc.StatusCode.ABORTED
    assert info is not None and info.reason == "UPLOADS_INCOMPLETE"
    assert (await state_of(partner, "seal-dir")).state == S.SUBMISSION_STATE_AWAITING_UPLOAD
    await partner.close()
