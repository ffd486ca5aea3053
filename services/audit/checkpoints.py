"""Signed checkpoints of the chain head, kept outside the database.

The HMAC chain proves that no entry in it was edited, removed or inserted,
but not that its *tail* is still there: whoever can write the database can
delete the newest entries and rewind the head row to the last one kept, and
the chain that remains verifies. The audit service therefore writes, every
`every_entries` entries or `every_seconds` seconds (whichever comes first,
when the head has moved), a checkpoint of (sequence, entry MAC) signed with
an Ed25519 key, appended as one JSON line to a file the database cannot
rewind: on one machine `<data dir>/audit/checkpoints.jsonl`; in the chart a
volume of its own (or a copy shipped to an object store with retention
lock). The file holds only sequences and MACs, nothing personal.

`verify_checkpoints` (run by `identity audit verify`) needs only the public
key: every line's signature must hold, and the entry each checkpoint names
must still be in the chain with the same MAC, the head at or past it. A
checkpoint past the head is a cut tail (TAIL_TRUNCATED, at the first
sequence missing); a named entry that is gone or differs is ENTRY_MISSING /
ENTRY_ALTERED. Checkpoints of entries removed by a retention purge (at or
below the purge checkpoint) are skipped.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from identity_runtime.logs import get_logger
from identity_runtime.tasks import cancel_and_wait
from identity_store.types import utcnow
from services.audit.chain import (
    CHECKPOINT_INVALID,
    ENTRY_ALTERED,
    ENTRY_MISSING,
    TAIL_TRUNCATED,
    Entry,
    VerifyReport,
    timestamp_text,
)

log = get_logger("identity.audit.checkpoints")

_DOMAIN = b"identity-audit-checkpoint/v1\n"
DEFAULT_EVERY_ENTRIES = 100
DEFAULT_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class SignedCheckpoint:
    sequence: int
    entry_hmac: str
    entry_recorded_at: str
    signed_at: str
    # The signing key's id: the first 16 hex digits of SHA-256 of its raw public key.
    key_id: str
    signature: str = ""

    def message(self) -> bytes:
        document = asdict(self)
        del document["signature"]
        return _DOMAIN + json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(private_key: Ed25519PrivateKey, entry: Entry, signed_at: datetime) -> SignedCheckpoint:
    unsigned = SignedCheckpoint(
        sequence=entry.sequence,
        entry_hmac=entry.entry_hmac,
        entry_recorded_at=timestamp_text(entry.recorded_at),
        signed_at=timestamp_text(signed_at),
        key_id=key_id(private_key.public_key()),
    )
    signature = base64.b64encode(private_key.sign(unsigned.message())).decode()
    return SignedCheckpoint(**{**asdict(unsigned), "signature": signature})


def signature_valid(checkpoint: SignedCheckpoint, public_key: Ed25519PublicKey) -> bool:
    if checkpoint.key_id != key_id(public_key):
        return False
    try:
        public_key.verify(
            base64.b64decode(checkpoint.signature, validate=True), checkpoint.message()
        )
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


# --- keys -------------------------------------------------------------------------


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key (PEM, PKCS#8)")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key (PEM)")
    return key


def create_key_pair(private_path: Path, public_path: Path) -> None:
    """A new Ed25519 key pair: the private key 0600, the public key beside it."""
    key = Ed25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


# --- the file -----------------------------------------------------------------------


def read_checkpoints(path: Path) -> list[SignedCheckpoint]:
    """Every checkpoint in the file (none if it does not exist yet)."""
    if not path.exists():
        return []
    checkpoints = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
            checkpoints.append(
                SignedCheckpoint(
                    sequence=int(document["sequence"]),
                    entry_hmac=str(document["entry_hmac"]),
                    entry_recorded_at=str(document["entry_recorded_at"]),
                    signed_at=str(document["signed_at"]),
                    key_id=str(document["key_id"]),
                    signature=str(document["signature"]),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}, line {number}: not a checkpoint ({exc})") from None
    return checkpoints


def append_checkpoint(path: Path, checkpoint: SignedCheckpoint) -> None:
    """One line, appended and synced (O_APPEND: writers never overwrite)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(asdict(checkpoint), sort_keys=True, separators=(",", ":")) + "\n").encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, line)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- verification ---------------------------------------------------------------------


def verify_checkpoints(
    checkpoints: Iterable[SignedCheckpoint],
    public_key: Ed25519PublicKey,
    head_sequence: int,
    entry_hmac: Callable[[int], str | None],
    purged_through: int = 0,
) -> VerifyReport | None:
    """None when every checkpoint holds against the chain; else the problem.
    `entry_hmac(sequence)` reads the MAC of an entry (None: not there)."""
    ordered = sorted(checkpoints, key=lambda c: c.sequence)
    for checkpoint in ordered:
        if not signature_valid(checkpoint, public_key):
            return VerifyReport(False, 0, checkpoint.sequence, CHECKPOINT_INVALID)
    for checkpoint in ordered:
        if checkpoint.sequence <= purged_through:
            continue
        if checkpoint.sequence > head_sequence:
            return VerifyReport(False, 0, head_sequence + 1, TAIL_TRUNCATED)
        found = entry_hmac(checkpoint.sequence)
        if found is None:
            return VerifyReport(False, 0, checkpoint.sequence, ENTRY_MISSING)
        if found != checkpoint.entry_hmac:
            return VerifyReport(False, 0, checkpoint.sequence, ENTRY_ALTERED)
    return None


# --- the writer in the audit service --------------------------------------------------


class CheckpointWriter:
    """Signs the newest committed entry every `every_entries` entries or
    `every_seconds` seconds (when the head moved), appending to `path`."""

    def __init__(
        self,
        path: Path,
        private_key: Ed25519PrivateKey,
        every_entries: int = DEFAULT_EVERY_ENTRIES,
        every_seconds: float = DEFAULT_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.path = path
        self.private_key = private_key
        self.every_entries = every_entries
        self.every_seconds = every_seconds
        self.clock = clock
        try:
            existing = read_checkpoints(path)
        except (OSError, ValueError) as exc:
            # Appending still works; `identity audit verify` reports the bad line.
            log.error("audit checkpoint file unreadable", error=str(exc))
            existing = []
        self.written_sequence = max((c.sequence for c in existing), default=0)
        self.written_at = clock()
        self.newest: Entry | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def committed(self, entries: list[Entry]) -> None:
        """After a batch committed: checkpoint if `every_entries` passed."""
        if not entries:
            return
        newest = max(entries, key=lambda e: e.sequence)
        if self.newest is None or newest.sequence > self.newest.sequence:
            self.newest = newest
        if self.newest.sequence - self.written_sequence >= self.every_entries:
            await self.write()

    async def tick(self) -> None:
        """Checkpoint if `every_seconds` passed since the last one and the head moved."""
        if self.clock() - self.written_at >= self.every_seconds:
            await self.write()

    async def write(self) -> None:
        async with self._lock:
            newest = self.newest
            if newest is None or newest.sequence <= self.written_sequence:
                self.written_at = self.clock()
                return
            checkpoint = sign(self.private_key, newest, utcnow())
            try:
                await asyncio.to_thread(append_checkpoint, self.path, checkpoint)
            except OSError as exc:
                # The entries are committed; the next checkpoint covers them.
                log.error("audit checkpoint not written", error=type(exc).__name__)
                return
            self.written_sequence = newest.sequence
            self.written_at = self.clock()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        interval = max(0.05, min(1.0, self.every_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            await self.tick()

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        # What committed since the last checkpoint is covered on the way out.
        await self.write()
