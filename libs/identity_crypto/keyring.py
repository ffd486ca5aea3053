"""Keyrings: named 256-bit secrets with one primary, read from a secret file or setting.

The same format serves the key-encryption keys (matching, kyc-tier) and the
audit log's HMAC keys. Several versions live side by side so rotation never
strands a record: new material is produced under the primary id, and every
listed id stays readable until nothing refers to it any more.

    {"primary": "kek-2026-07",
     "keys": {"kek-2026-07": "<base64 of 32 bytes>",
              "kek-2026-01": "<base64 of 32 bytes>"}}

In production the file is mounted from a Kubernetes Secret; for development
the JSON can be passed inline in an environment variable. Key material is
never printed: errors name the id, never the value.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

KEY_BYTES = 32
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class KeyringError(ValueError):
    """The keyring is missing, malformed or incomplete (a configuration problem)."""


@dataclass(frozen=True)
class Keyring:
    primary_id: str
    # id -> 32 bytes; hidden from repr so a traceback never shows key material.
    keys: Mapping[str, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyringError("the keyring holds no keys")
        for key_id, material in self.keys.items():
            if not KEY_ID_PATTERN.match(key_id):
                raise KeyringError(
                    f"key id {key_id!r} must be 1-64 characters of letters, digits, '.', '_' or '-'"
                )
            if len(material) != KEY_BYTES:
                raise KeyringError(f"key {key_id!r} must be {KEY_BYTES} bytes, got {len(material)}")
        if self.primary_id not in self.keys:
            raise KeyringError(f"the primary key id {self.primary_id!r} is not among the keys")

    @property
    def primary(self) -> bytes:
        return self.keys[self.primary_id]

    def get(self, key_id: str) -> bytes | None:
        return self.keys.get(key_id)

    def ids(self) -> tuple[str, ...]:
        return tuple(self.keys)

    # --- serialisation ---------------------------------------------------------

    @classmethod
    def from_json(cls, text: str, source: str = "keyring") -> Keyring:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KeyringError(f"{source}: not valid JSON (line {exc.lineno})") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), dict):
            raise KeyringError(
                f'{source}: expected {{"primary": "<id>", "keys": {{"<id>": "<base64>"}}}}'
            )
        keys: dict[str, bytes] = {}
        for key_id, encoded in document["keys"].items():
            if not isinstance(encoded, str):
                raise KeyringError(f"{source}: key {key_id!r} must be a base64 string")
            try:
                keys[str(key_id)] = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise KeyringError(f"{source}: key {key_id!r} is not valid base64") from None
        primary = document.get("primary")
        if not isinstance(primary, str):
            raise KeyringError(f"{source}: 'primary' must name one of the keys")
        try:
            return cls(primary_id=primary, keys=keys)
        except KeyringError as exc:
            raise KeyringError(f"{source}: {exc}") from None

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        try:
            text = path.read_text()
        except OSError as exc:
            raise KeyringError(f"cannot read keyring file {path}: {exc.strerror}") from None
        return cls.from_json(text, source=str(path))

    def to_json(self) -> str:
        return json.dumps(
            {
                "primary": self.primary_id,
                "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()},
            },
            indent=2,
        )

    def with_key(self, key_id: str, material: bytes, make_primary: bool) -> Keyring:
        if key_id in self.keys:
            raise KeyringError(f"key id {key_id!r} already exists")
        keys = {**self.keys, key_id: material}
        return Keyring(primary_id=key_id if make_primary else self.primary_id, keys=keys)

    def with_primary(self, key_id: str) -> Keyring:
        if key_id not in self.keys:
            raise KeyringError(f"key id {key_id!r} is not in the keyring")
        return Keyring(primary_id=key_id, keys=self.keys)

    def without_key(self, key_id: str) -> Keyring:
        if key_id == self.primary_id:
            raise KeyringError("the primary key cannot be removed; make another key primary first")
        if key_id not in self.keys:
            raise KeyringError(f"key id {key_id!r} is not in the keyring")
        return Keyring(
            primary_id=self.primary_id, keys={k: v for k, v in self.keys.items() if k != key_id}
        )


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def generate(key_id: str) -> Keyring:
    return Keyring(primary_id=key_id, keys={key_id: new_key()})


def load_keyring(file: Path | None, inline: str, what: str) -> Keyring:
    """The keyring from a file (preferred) or an inline JSON setting."""
    if file is not None:
        return Keyring.from_file(file)
    if inline.strip():
        return Keyring.from_json(inline, source=f"inline {what}")
    raise KeyringError(f"no {what}: set a keyring file or the inline keyring setting")


def write_keyring_file(path: Path, keyring: Keyring) -> None:
    """Write atomically with owner-only permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(keyring.to_json() + "\n")
    os.replace(temporary, path)
