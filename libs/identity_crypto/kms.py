"""The key-encryption service: wraps and unwraps data keys under named KEKs.

`KeyEncryptionService` is the seam. `LocalKms` holds the KEKs in process
memory, read from a keyring (a file mounted from a Kubernetes Secret, or an
inline setting). A cloud KMS or an HSM plugs in behind the same four methods:
`wrap` is AWS KMS `Encrypt` / GCP KMS `Encrypt` / PKCS#11 `C_WrapKey` with the
context as encryption context or additional authenticated data, `unwrap` the
reverse, and the KEK id is the provider's key version name. Nothing above this
module knows which one runs.

The context binds a wrapped key to the row that stores it (key id, owner,
purpose): a wrapped key copied into another row does not unwrap.
"""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from identity_crypto.errors import KeyNotFound, SealedDataUnreadable
from identity_crypto.keyring import Keyring

_NONCE_BYTES = 12
_WRAP_DOMAIN = b"identity-platform/kek-wrap/v1\x00"


@runtime_checkable
class KeyEncryptionService(Protocol):
    def primary_kek_id(self) -> str:
        """The KEK that wraps new data keys and that rotation re-wraps to."""
        ...

    def kek_ids(self) -> tuple[str, ...]:
        """Every KEK this service can unwrap with."""
        ...

    def wrap(self, data_key: bytes, context: bytes) -> tuple[str, bytes]:
        """Wrap under the primary KEK; returns (kek id, wrapped key)."""
        ...

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        """The data key; KeyNotFound for an unknown KEK, SealedDataUnreadable
        when the wrapped key or its context does not authenticate."""
        ...


class LocalKms:
    """KEKs held in memory (AES-256-GCM key wrapping with associated data)."""

    def __init__(self, keyring: Keyring):
        self._keyring = keyring
        self._ciphers = {key_id: AESGCM(material) for key_id, material in keyring.keys.items()}

    def primary_kek_id(self) -> str:
        return self._keyring.primary_id

    def kek_ids(self) -> tuple[str, ...]:
        return self._keyring.ids()

    def wrap(self, data_key: bytes, context: bytes) -> tuple[str, bytes]:
        kek_id = self._keyring.primary_id
        nonce = os.urandom(_NONCE_BYTES)
        wrapped = nonce + self._ciphers[kek_id].encrypt(nonce, data_key, _WRAP_DOMAIN + context)
        return kek_id, wrapped

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        cipher = self._ciphers.get(kek_id)
        if cipher is None:
            raise KeyNotFound(
                "a data key is wrapped under a key-encryption key this deployment does not hold",
                "KEY_NOT_FOUND",
                {"kek_id": kek_id},
            )
        if len(wrapped) <= _NONCE_BYTES:
            raise SealedDataUnreadable("a wrapped data key is truncated", "TEMPLATE_UNREADABLE")
        try:
            return cipher.decrypt(
                wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], _WRAP_DOMAIN + context
            )
        except InvalidTag:
            raise SealedDataUnreadable(
                "a wrapped data key failed authentication "
                "(wrong key-encryption key or altered row)",
                "TEMPLATE_UNREADABLE",
                {"kek_id": kek_id},
            ) from None
