"""What confirm checks of each uploaded object before it queues a submission.

The presigned PUT only bounds what the store can bound (the local bucket: the
content type and the size; S3: the content type it signed), so the bytes
themselves are checked when the partner declares the uploads done: the size
first (from the store, before reading: S3 cannot bound a presigned PUT),
then the magic number and a real decode with the decoder the worker uses
(identity_inference.images, the matcher's limits); in the local bucket the
object is first opened (sealing.py). An image that fails is
refused at confirm with INVALID_ARGUMENT and its reason (IMAGE_EMPTY,
IMAGE_TOO_LARGE, IMAGE_TOO_SMALL, IMAGE_UNDECODABLE) naming the image; its
object is deleted and the submission keeps awaiting a new upload of it
(submissions/confirmation.py). The worker keeps its own checks: an
object replaced in the store after confirm still fails the submission there.

Messages and logs name the image and the problem, never the bytes.
"""

from __future__ import annotations

from collections.abc import Mapping

from identity_inference import images
from identity_runtime.errors import DomainError, FailedPrecondition, InvalidArgument
from identity_runtime.logs import get_logger
from services.face_match.bucket import LocalBucket, ObjectStore, ObjectTooLarge, object_key
from services.face_match.matcher import LIMITS
from services.face_match.sealing import OVERHEAD_BYTES, ObjectSeal, ObjectUnreadable, open_object

log = get_logger("face_match.uploads")

# The detail of the transition that records a refused upload (its audit
# entry's action is face_match.upload_refused: services/face_match/audit.py).
UPLOAD_REFUSED = "upload refused"


class Absent(Exception):
    """The object is not in the store (not uploaded, or already deleted)."""


# Confirm's refusals of an object: the upload is unusable (INVALID_ARGUMENT),
# or it was good but the data key it was sealed under is gone
# (FAILED_PRECONDITION). Either way the object is deleted and uploaded again.
Refusal = InvalidArgument | FailedPrecondition
REFUSALS = (InvalidArgument, FailedPrecondition)
_KEY_GONE = "UPLOAD_KEY_DESTROYED"


def _refusal(image: str, problem: str, reason: str, extra: Mapping[str, object]) -> Refusal:
    error = FailedPrecondition if reason == _KEY_GONE else InvalidArgument
    return error(
        f"the {image} upload {problem}; upload the {image} again, then confirm",
        reason,
        {"image": image, **{k: v for k, v in extra.items() if k != "field"}},
    )


def check(
    store: ObjectStore,
    submission_id: str,
    image: str,
    max_bytes: int,
    seal: ObjectSeal | None = None,
) -> None:
    """Nothing when the stored `image` decodes as the worker will decode it;
    Absent when there is no object; the refusal (`Refusal`) otherwise.

    The local bucket's objects are sealed (sealing.py): `seal` is the
    submission's key (None: it has none). One that is not sealed, or does not
    authenticate as this submission's `image` (altered, or moved from another
    submission), is refused with UPLOAD_NOT_SEALED / UPLOAD_SEAL_INVALID
    (INVALID_ARGUMENT); one sealed under a key that is gone with
    UPLOAD_KEY_DESTROYED (FAILED_PRECONDITION: the upload was good, the
    key is what is missing)."""
    key = object_key(submission_id, image)
    sealed = isinstance(store, LocalBucket)
    size = store.size(key)
    if size is None:
        raise Absent(image)
    if size > max_bytes + (OVERHEAD_BYTES if sealed else 0):
        raise _refusal(image, "is larger than allowed", "IMAGE_TOO_LARGE", {"limit": max_bytes})
    if size == 0:
        raise _refusal(image, "is empty (0 bytes)", "IMAGE_EMPTY", {})
    try:
        data = store.get(key)
    except ObjectTooLarge:
        # Replaced by a larger object since the size was read.
        raise _refusal(
            image, "is larger than allowed", "IMAGE_TOO_LARGE", {"limit": max_bytes}
        ) from None
    if data is None:
        raise Absent(image)
    if sealed:
        try:
            data = open_object(seal, image, data)
        except ObjectUnreadable as bad:
            log.warning(
                "face_match.object_unreadable",
                submission_id=submission_id,
                # Not "image": the log scrubber masks that key (it would hold bytes).
                slot=image,
                reason=bad.reason,
            )
            raise _refusal(image, bad.problem, bad.reason, {}) from None
    try:
        images.decode(data, LIMITS, image)
    except DomainError as exc:
        problem = exc.message.removeprefix(f"{image}: ")
        raise _refusal(
            image, f"is not a usable image ({problem})", exc.reason, exc.metadata
        ) from None
