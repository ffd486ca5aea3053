"""The uploaded images sealed at rest in the local bucket (seed 001: biometric
captures and KTP frames are sealed with AES-256-GCM).

Envelope encryption with the platform's library (identity_crypto), as
kyc-tier seals its capture bundles: each submission has its own data key
(`fm_data_keys`, purpose "image", `customer_id` = the submission id: Face
Match has no customer), wrapped by the deployment's key-encryption service
(the KEK keyring kyc-tier and matching hold). An object on disk is
`MAGIC` + `envelope.seal(...)` (format byte, 12-byte nonce, ciphertext,
16-byte tag) whose associated data is the organisation, the submission and
the image ("selfie" / "reference"): an object altered, or moved to another
submission's or image's path, fails authentication instead of opening.

Granularity: one key per submission, created with its first upload under the
submission's row lock. Purging the images (retention, expiry) destroys the
key (crypto-shredding: a copy of an object in a backup cannot be opened
again), and erasing the submission deletes its key row with its other rows,
so nothing an erased or purged submission uploaded is readable, whether or
not the file deletion that follows succeeded.

Objects written before sealing (plain image files, at most one retention
period old) are not opened: confirm refuses them with UPLOAD_NOT_SEALED and
the partner uploads again; the worker fails a queued one with that reason.
A sealed object whose data key is gone (its row deleted or destroyed: only a
submission still awaiting uploads or queued reaches the check, so this is a
database restored behind its bucket, or a key removed by hand) is
UPLOAD_KEY_DESTROYED instead: it was sealed, and can never be opened again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete
from sqlalchemy.orm import Session

from identity_crypto import envelope
from identity_crypto.datakeys import DataKeyStore
from identity_crypto.errors import KeyDestroyed, SealedDataUnreadable
from services.face_match.models import DataKey

IMAGE_PURPOSE = "image"
# Marks a sealed object (a plain JPEG, PNG or WebP never starts with it).
MAGIC = b"FMSEAL1\n"
OVERHEAD_BYTES = len(MAGIC) + envelope.OVERHEAD_BYTES


class ObjectUnreadable(Exception):
    """A stored object that does not open as this submission's image."""

    def __init__(self, image: str, reason: str, problem: str):
        super().__init__(f"{image}: {problem}")
        self.image = image
        self.reason = reason
        self.problem = problem


def not_sealed(image: str) -> ObjectUnreadable:
    return ObjectUnreadable(
        image, "UPLOAD_NOT_SEALED", "is not sealed (stored before images were sealed at rest)"
    )


def key_destroyed(image: str) -> ObjectUnreadable:
    return ObjectUnreadable(
        image,
        "UPLOAD_KEY_DESTROYED",
        "is sealed under a data key that no longer exists (destroyed or deleted): "
        "it can never be opened",
    )


def _aad(org_id: str, submission_id: str, image: str) -> bytes:
    return envelope.associated_data(
        "face_match_image", org_id=org_id, submission_id=submission_id, image=image
    )


@dataclass(frozen=True)
class ObjectSeal:
    """One submission's data key, bound to its organisation and id."""

    org_id: str
    submission_id: str
    material: bytes = field(repr=False)

    def seal(self, image: str, data: bytes) -> bytes:
        return MAGIC + envelope.seal(
            self.material, data, _aad(self.org_id, self.submission_id, image)
        )

    def open(self, image: str, stored: bytes) -> bytes:
        """The image's bytes; ObjectUnreadable when not sealed or not authentic."""
        if not stored.startswith(MAGIC):
            raise not_sealed(image)
        try:
            return envelope.open_sealed(
                self.material, stored[len(MAGIC) :], _aad(self.org_id, self.submission_id, image)
            )
        except SealedDataUnreadable:
            raise ObjectUnreadable(
                image,
                "UPLOAD_SEAL_INVALID",
                "failed authentication (altered, or not this submission's)",
            ) from None


def open_object(seal: ObjectSeal | None, image: str, stored: bytes) -> bytes:
    """The image's bytes of a local-bucket object; ObjectUnreadable when the
    submission has no live key (`seal` None: the object is plain, or its key
    is gone), or the object is not sealed or not authentic."""
    if seal is not None:
        return seal.open(image, stored)
    if stored.startswith(MAGIC):
        raise key_destroyed(image)
    raise not_sealed(image)


class ImageSeals:
    """The per-submission data keys of the local bucket's objects."""

    def __init__(self, keys: DataKeyStore):
        self.keys = keys

    def for_upload(self, session: Session, org_id: str, submission_id: str) -> ObjectSeal:
        """The submission's key, created on its first upload (the caller holds
        the submission's row lock)."""
        key = self.keys.customer_key(session, org_id, submission_id, IMAGE_PURPOSE)
        return ObjectSeal(org_id, submission_id, key.material)

    def for_reading(self, session: Session, org_id: str, submission_id: str) -> ObjectSeal | None:
        """The submission's key; None when it never had one or it was destroyed."""
        rows = self.keys.customer_keys(session, org_id, submission_id, IMAGE_PURPOSE)
        if not rows:
            return None
        try:
            return ObjectSeal(org_id, submission_id, self.keys.open_key(rows[0]))
        except KeyDestroyed:
            return None

    def destroy(self, session: Session, org_id: str, submission_id: str) -> None:
        """Crypto-shred the submission's images (the row stays, destroyed)."""
        self.keys.destroy_customer_keys(session, org_id, submission_id, (IMAGE_PURPOSE,))

    def forget(self, session: Session, org_id: str, submission_id: str) -> None:
        """Destroy the key and delete its row (the submission's rows go too)."""
        self.destroy(session, org_id, submission_id)
        session.execute(
            delete(DataKey).where(
                DataKey.org_id == org_id,
                DataKey.customer_id == submission_id,
                DataKey.purpose == IMAGE_PURPOSE,
            )
        )
