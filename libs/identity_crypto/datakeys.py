"""Per-customer data keys: created, unwrapped (with a short-lived cache),
crypto-shredded, and re-wrapped under a new key-encryption key.

A data key is 32 random bytes, stored only wrapped by a KEK (a data-key
row: `wrapped_key`, `kek_id`). Records sealed under it store its `key_id`.
Each owner of sealed data keeps its keys in a table of its own, mapped with
`DataKeyColumns` (kyc-tier's and matching's are distinct tables); a
`DataKeyStore` works on the table its owner gives it.

Crypto-shredding sets `wrapped_key` to NULL and `destroyed_at`: with the only
wrapped copy gone, nothing the key sealed can be opened again, including
copies of the ciphertext in replicas and backups taken after the shred. A
shredded customer keeps a tombstone row, so new material is never sealed for
them again. The cache never outlives a shred: every open re-reads the key's
row in the same transaction as the sealed record and refuses a destroyed key
before looking at the cache.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import LargeBinary, String, func, select
from sqlalchemy.orm import InstrumentedAttribute, Mapped, Session, mapped_column

from identity_crypto.envelope import associated_data
from identity_crypto.errors import KeyDestroyed
from identity_crypto.kms import KeyEncryptionService
from identity_crypto.memory_cache import SecretCache
from identity_runtime.settings import (
    DatabaseSettings,
    ServiceSettings,
    inline_secret_setting,
    kms_region_setting,
    setting,
)
from identity_store.declarative import ID
from identity_store.types import utcnow

DATA_KEY_BYTES = 32
PURPOSES = ("template", "bundle", "pii")


def new_key_id() -> str:
    return f"dk_{uuid.uuid4().hex}"


class DataKeyColumns:
    """The columns of a data-key table. An owner maps its own table with it:

        class DataKey(DataKeyColumns, Base):
            __tablename__ = "matching_data_keys"

    Destroying `wrapped_key` crypto-shreds everything sealed under the key.
    """

    key_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ID)
    # NULL for an organisation-level key.
    customer_id: Mapped[str | None] = mapped_column(ID)
    # "template", "bundle", "pii".
    purpose: Mapped[str] = mapped_column(String(16))
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    kek_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    rewrapped_at: Mapped[datetime | None] = mapped_column()
    destroyed_at: Mapped[datetime | None] = mapped_column()


# A mapped subclass of DataKeyColumns (the owner's table).
KeyTable = type[DataKeyColumns]


class KeyView(NamedTuple):
    """A data-key row read as plain columns (bulk reads skip the ORM)."""

    key_id: str
    org_id: str
    customer_id: str | None
    purpose: str
    kek_id: str
    wrapped_key: bytes | None
    destroyed_at: datetime | None


# What unwrapping needs of a data-key row: an ORM row or a plain view.
KeyRow = DataKeyColumns | KeyView


def key_columns(table: KeyTable) -> tuple[InstrumentedAttribute[Any], ...]:
    """The table's columns in KeyView order (for bulk reads that join the keys)."""
    return tuple(getattr(table, name) for name in KeyView._fields)


def wrap_context(row: KeyRow) -> bytes:
    return associated_data(
        "data-key",
        key_id=row.key_id,
        org_id=row.org_id,
        customer_id=row.customer_id or "",
        purpose=row.purpose,
    )


@dataclass(frozen=True)
class DataKey:
    key_id: str
    kek_id: str
    material: bytes = field(repr=False)


# Unwrapped data keys kept in memory, and for how long (the services' KEY_CACHE_* defaults).
DEFAULT_KEY_CACHE_SIZE = 10_000
DEFAULT_KEY_CACHE_TTL_SECONDS = 300.0


@dataclass(frozen=True, kw_only=True)
class DataKeySettings:
    """The settings of a service that seals records under per-customer data
    keys (kyc-tier, matching): the KEK keyring that wraps them, the KMS region,
    and the cache of unwrapped keys. Mixed in first, so that they follow the
    database settings (`SealedStoreSettings` below); the service checks the
    keyring with `keyring_missing(self, "kek_keyring", prefix)`."""

    kek_keyring_file: Path | None = setting(
        None,
        "JSON keyring of key-encryption keys (kyc-tier and matching hold the same one), "
        "mounted from a Kubernetes Secret (see docs/matching-and-audit.md)",
    )
    kek_keyring: str = inline_secret_setting("JSON keyring")
    kms_region: str = kms_region_setting()
    key_cache_size: int = setting(
        DEFAULT_KEY_CACHE_SIZE, "Unwrapped data keys kept in memory (0 disables the cache)"
    )
    key_cache_ttl_seconds: float = setting(
        DEFAULT_KEY_CACHE_TTL_SECONDS, "Lifetime of a cached unwrapped data key"
    )


@dataclass(frozen=True, kw_only=True)
class SealedStoreSettings(DataKeySettings, DatabaseSettings, ServiceSettings):
    """The start of a service that keeps records sealed under data keys in its
    own database (kyc-tier, matching): both the database and the KMS hold
    personal data, so production keeps them in the allowed regions."""

    RESIDENT_ENDPOINTS = ("database_url",)
    RESIDENT_REGIONS = ("kms_region",)


class DataKeyStore:
    """The data keys of one owner's table."""

    def __init__(
        self,
        kms: KeyEncryptionService,
        table: KeyTable,
        cache_size: int = DEFAULT_KEY_CACHE_SIZE,
        cache_ttl_seconds: float = DEFAULT_KEY_CACHE_TTL_SECONDS,
    ):
        self.kms = kms
        self.table = table
        # Unwrapped data keys by key id (a cloud KMS call per verification would
        # dominate the 1:1 latency).
        self._cache: SecretCache[str, bytes] = SecretCache(cache_size, cache_ttl_seconds)

    # --- reading ---------------------------------------------------------------

    def open_key(self, row: KeyRow) -> bytes:
        """The plaintext data key of a row; KeyDestroyed after a shred."""
        if row.wrapped_key is None or row.destroyed_at is not None:
            raise KeyDestroyed(
                "the customer's key material was destroyed (erased); "
                "their templates cannot be opened"
            )
        cached = self._cache.get(row.key_id)
        if cached is not None:
            return cached
        material = self.kms.unwrap(row.kek_id, row.wrapped_key, wrap_context(row))
        self._cache.put(row.key_id, material)
        return material

    def customer_keys(
        self, session: Session, org_id: str, customer_id: str | None, purpose: str
    ) -> list[DataKeyColumns]:
        table = self.table
        return list(
            session.scalars(
                select(table)
                .where(
                    table.org_id == org_id,
                    table.customer_id == customer_id,
                    table.purpose == purpose,
                )
                .order_by(table.created_at, table.key_id)
            )
        )

    def customer_key(
        self, session: Session, org_id: str, customer_id: str | None, purpose: str
    ) -> DataKey:
        """The customer's live key for `purpose`, created on first use (customer
        None: the organisation's own key).

        Callers that may race on the first key for a customer serialise
        beforehand (matching holds its organisation's gallery lock); a lost
        race would only leave two live keys, both shredded together.
        """
        rows = self.customer_keys(session, org_id, customer_id, purpose)
        if any(r.destroyed_at is not None for r in rows):
            raise KeyDestroyed(
                "the customer was erased: their key material is destroyed "
                "and nothing new is sealed for them"
            )
        if rows:
            row = rows[0]
            return DataKey(row.key_id, row.kek_id, self.open_key(row))
        material = os.urandom(DATA_KEY_BYTES)
        row = self._new_row(org_id, customer_id, purpose)
        row.kek_id, row.wrapped_key = self.kms.wrap(material, wrap_context(row))
        session.add(row)
        session.flush()
        self._cache.put(row.key_id, material)
        return DataKey(row.key_id, row.kek_id, material)

    def _new_row(self, org_id: str, customer_id: str | None, purpose: str) -> DataKeyColumns:
        """A new row of the owner's table, its key not wrapped yet."""
        # The owner's mapped table takes column keywords; the mixin declares none.
        return self.table(  # type: ignore[call-arg]
            key_id=new_key_id(), org_id=org_id, customer_id=customer_id, purpose=purpose, kek_id=""
        )

    # --- crypto-shredding ------------------------------------------------------

    def destroy_customer_keys(
        self,
        session: Session,
        org_id: str,
        customer_id: str,
        purposes: tuple[str, ...] = ("template",),
    ) -> tuple[int, datetime]:
        """Destroy every live key of the customer for `purposes`.

        Returns (keys destroyed now, when the customer was shredded). Idempotent:
        a second call destroys nothing and returns the first shred's time. A
        customer without keys gets a tombstone, so nothing is sealed for them
        later.
        """
        now = utcnow()
        destroyed = 0
        earliest: datetime | None = None
        for purpose in purposes:
            rows = self.customer_keys(session, org_id, customer_id, purpose)
            for row in rows:
                if row.destroyed_at is not None:
                    earliest = (
                        row.destroyed_at if earliest is None else min(earliest, row.destroyed_at)
                    )
                    continue
                row.wrapped_key = None
                row.destroyed_at = now
                destroyed += 1
            if not rows:
                tombstone = self._new_row(org_id, customer_id, purpose)
                tombstone.wrapped_key, tombstone.destroyed_at = None, now
                session.add(tombstone)
        session.flush()
        self._cache.remove(
            r.key_id for p in purposes for r in self.customer_keys(session, org_id, customer_id, p)
        )
        return destroyed, (now if destroyed or earliest is None else earliest)


# --- rotation ---------------------------------------------------------------------


@dataclass
class RotationReport:
    rewrapped: int = 0
    batches: int = 0
    # Live keys still under a KEK other than the primary, by KEK id (those
    # under KEKs missing from the keyring cannot be re-wrapped here).
    remaining: dict[str, int] = field(default_factory=dict)


def kek_usage(session: Session, table: KeyTable) -> dict[str, int]:
    """Live (not destroyed) data keys of one table per KEK id."""
    rows = session.execute(
        select(table.kek_id, func.count())
        .where(table.wrapped_key.is_not(None))
        .group_by(table.kek_id)
    )
    return {kek_id: count for kek_id, count in rows}


def rewrap_data_keys(
    transaction: Callable[[], AbstractContextManager[Session]],
    kms: KeyEncryptionService,
    table: KeyTable,
    batch_size: int = 500,
    progress: Callable[[RotationReport], None] | None = None,
) -> RotationReport:
    """Re-wrap every live data key of `table` under the KMS's primary KEK.

    Runs in short transactions of `batch_size` keys, so services keep
    working throughout: a reader always finds a consistent (kek_id,
    wrapped_key) pair and can unwrap either version, because the old KEK
    stays in the keyring until this reports nothing remaining. Templates are
    not touched (they are sealed under the data keys, which do not change).
    Concurrent runs split the work (SKIP LOCKED on PostgreSQL).

    `transaction` is a context-manager factory yielding a Session
    (`Database.transaction`).
    """
    report = RotationReport()
    primary = kms.primary_kek_id()
    rewrappable = [k for k in kms.kek_ids() if k != primary]
    while rewrappable:
        with transaction() as session:
            rows = list(
                session.scalars(
                    select(table)
                    .where(
                        table.kek_id.in_(rewrappable),
                        table.wrapped_key.is_not(None),
                    )
                    .order_by(table.key_id)
                    .limit(batch_size)
                    .with_for_update(skip_locked=True)
                )
            )
            for row in rows:
                assert row.wrapped_key is not None  # the query selects wrapped keys only
                context = wrap_context(row)
                material = kms.unwrap(row.kek_id, row.wrapped_key, context)
                row.kek_id, row.wrapped_key = kms.wrap(material, context)
                row.rewrapped_at = utcnow()
        if not rows:
            break
        report.rewrapped += len(rows)
        report.batches += 1
        if progress is not None:
            progress(report)
    with transaction() as session:
        report.remaining = {k: n for k, n in kek_usage(session, table).items() if k != primary}
    return report
