"""Domain errors of the key and sealing layer (mapped to gRPC by the runtime)."""

from __future__ import annotations

from identity_runtime.errors import DataLoss, FailedPrecondition


class KeyDestroyed(FailedPrecondition):
    """The data key was crypto-shredded; what it sealed is unrecoverable."""

    default_reason = "KEY_DESTROYED"


class KeyNotFound(FailedPrecondition):
    """A record names a key (KEK or data key) that the key store does not hold."""

    default_reason = "KEY_NOT_FOUND"


class SealedDataUnreadable(DataLoss):
    """A sealed value or wrapped key failed authentication: wrong key,
    altered ciphertext, or a ciphertext moved to another row."""

    default_reason = "TEMPLATE_UNREADABLE"
