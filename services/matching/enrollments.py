"""Sealed face references in the database (synchronous; run inside `Database.run`).

Every write of an organisation's enrollments (enroll, retire, shred) first
locks that organisation's `gallery_heads` row and stamps each changed row
with the next change number. Commit order therefore equals number order
within an organisation, which is what lets matching replicas converge by
reading "rows changed above my high-water mark" (see `changes_since`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from identity_crypto import envelope, templates
from identity_crypto.datakeys import DataKeyStore, KeyRow, KeyView, key_columns
from identity_crypto.errors import KeyDestroyed, SealedDataUnreadable
from identity_runtime.errors import DataLoss, FailedPrecondition, NotFound, invalid_field
from identity_store.db import insert_missing
from identity_store.types import utcnow
from services.matching import models
from services.matching.contract import (
    SOURCE_PRIORITY,
    SUPERSEDABLE_SOURCES,
    EmbeddingContract,
    contract_mismatch,
)
from services.matching.gallery import GalleryEntry

TEMPLATE_PURPOSE = "template"
KEY_COLUMNS = key_columns(models.DataKey)


@dataclass(frozen=True)
class EnrollmentRecord:
    enrollment_id: str
    customer_id: str
    source: str
    contract: EmbeddingContract
    active: bool
    verification_id: str
    created_at: datetime
    retired_at: datetime | None
    sealed_size_bytes: int
    quality: float | None = None


@dataclass(frozen=True)
class EnrollResult:
    record: EnrollmentRecord
    # Gallery changes to apply locally right after commit.
    changes: list[GalleryEntry]


@dataclass(frozen=True)
class Reference:
    record: EnrollmentRecord
    vector: np.ndarray


def _record(row: models.Enrollment) -> EnrollmentRecord:
    return EnrollmentRecord(
        enrollment_id=row.enrollment_id,
        customer_id=row.customer_id,
        source=row.source,
        contract=EmbeddingContract(row.model_id, row.model_version, row.dimension),
        active=row.active,
        verification_id=row.verification_id or "",
        created_at=row.created_at,
        retired_at=row.retired_at,
        sealed_size_bytes=len(row.sealed_template or b""),
        quality=getattr(row, "quality", None),
    )


def _aad(row: models.Enrollment) -> bytes:
    return envelope.template_aad(
        row.org_id,
        row.customer_id,
        row.enrollment_id,
        row.model_id,
        row.dimension,
        row.template_format,
    )


def _customer_enrollments(org_id: str, customer_id: str) -> Select:
    """Every enrollment row of one customer of one organisation."""
    return select(models.Enrollment).where(
        models.Enrollment.org_id == org_id, models.Enrollment.customer_id == customer_id
    )


def lock_gallery(session: Session, org_id: str) -> models.GalleryHead:
    """Lock the organisation's gallery head (serialises its enrollment writes)."""
    head = session.scalar(
        select(models.GalleryHead).where(models.GalleryHead.org_id == org_id).with_for_update()
    )
    if head is not None:
        return head
    # The organisation's first write: create its head, tolerating a racing replica.
    head_values = {"last_seq": 0, "updated_at": utcnow()}
    insert_missing(session, models.GalleryHead, "org_id", org_id=org_id, **head_values)
    head = session.scalar(
        select(models.GalleryHead).where(models.GalleryHead.org_id == org_id).with_for_update()
    )
    assert head is not None
    return head


def _active_reference_statement() -> Select:
    enrollment = models.Enrollment
    return (
        select(
            enrollment.enrollment_id,
            enrollment.org_id,
            enrollment.customer_id,
            enrollment.source,
            enrollment.model_id,
            enrollment.model_version,
            enrollment.dimension,
            enrollment.template_format,
            enrollment.sealed_template,
            enrollment.active,
            enrollment.verification_id,
            enrollment.created_at,
            enrollment.retired_at,
            *(column.label(f"key_{column.key}") for column in KEY_COLUMNS),
        )
        .join(models.DataKey, models.DataKey.key_id == enrollment.data_key_id)
        .where(
            enrollment.org_id == bindparam("org_id"),
            enrollment.customer_id == bindparam("customer_id"),
            enrollment.active.is_(True),
        )
        .order_by(enrollment.source_priority, enrollment.created_at.desc())
        .limit(1)
    )


# Built once: constructing a statement costs more CPU than running it here.
_ACTIVE_REFERENCE = _active_reference_statement()


class EnrollmentStore:
    def __init__(
        self, keys: DataKeyStore, contract: EmbeddingContract, template_format: str = "fp16"
    ):
        self.keys = keys
        self.contract = contract
        self.template_format = template_format

    # --- the organisation's gallery lock ---------------------------------------

    def _lock_gallery(self, session: Session, org_id: str) -> models.GalleryHead:
        return lock_gallery(session, org_id)

    @staticmethod
    def _next_seq(head: models.GalleryHead) -> int:
        head.last_seq += 1
        head.updated_at = utcnow()
        return head.last_seq

    # --- sealing ---------------------------------------------------------------

    def seal_row(self, row: models.Enrollment, key_material: bytes, vector: np.ndarray) -> None:
        row.sealed_template = envelope.seal(
            key_material, templates.encode(vector, row.template_format), _aad(row)
        )

    def open_row(self, row: models.Enrollment, key_row: KeyRow) -> np.ndarray:
        material = self.keys.open_key(key_row)
        if row.sealed_template is None:
            raise KeyDestroyed("the template was destroyed")
        try:
            plaintext = envelope.open_sealed(material, row.sealed_template, _aad(row))
            return templates.decode(plaintext, row.template_format, row.dimension)
        except (SealedDataUnreadable, ValueError):
            raise DataLoss(
                "the stored reference failed authentication and cannot be used",
                "TEMPLATE_UNREADABLE",
            ) from None

    # --- writes ------------------------------------------------------------------

    def enroll(
        self,
        session: Session,
        org_id: str,
        customer_id: str,
        source: str,
        verification_id: str,
        vector: np.ndarray,
        hold: bool = False,
        quality: float | None = None,
        supersedes: str = "",
    ) -> EnrollResult:
        """`hold`: store the reference inactive (a duplicate face waiting for
        an analyst), leaving the current reference as it is (a held promotion
        supersedes nothing). `supersedes`: a step-up promotion retires that
        selfie-derived active reference first."""
        head = self._lock_gallery(session, org_id)
        key = self.keys.customer_key(session, org_id, customer_id, TEMPLATE_PURPOSE)
        priority = SOURCE_PRIORITY[source]
        current = session.scalars(
            _customer_enrollments(org_id, customer_id).where(models.Enrollment.active.is_(True))
        ).all()
        changes: list[GalleryEntry] = []
        if supersedes and not hold:
            current = self._supersede(session, current, supersedes, source, head)
            changes.append(GalleryEntry(supersedes, customer_id, None))
        # Active when the source ranks at least as high as the current reference.
        becomes_active = not hold and all(priority <= row.source_priority for row in current)
        seq = self._next_seq(head)
        if becomes_active:
            for row in current:
                row.active = False
                row.gallery_seq = seq
                changes.append(GalleryEntry(row.enrollment_id, customer_id, None))
        row = models.Enrollment(
            enrollment_id=f"enr_{uuid.uuid4().hex}",
            org_id=org_id,
            customer_id=customer_id,
            source=source,
            source_priority=priority,
            model_id=self.contract.model_id,
            model_version=self.contract.model_version,
            dimension=self.contract.dimension,
            template_format=self.template_format,
            data_key_id=key.key_id,
            active=becomes_active,
            verification_id=verification_id or None,
            created_at=utcnow(),
            gallery_seq=seq,
            quality=quality,
        )
        self.seal_row(row, key.material, vector)
        session.add(row)
        session.flush()
        if becomes_active:
            changes.append(GalleryEntry(row.enrollment_id, customer_id, vector))
        return EnrollResult(_record(row), changes)

    def _supersede(
        self,
        session: Session,
        current: Sequence[models.Enrollment],
        enrollment_id: str,
        source: str,
        head: models.GalleryHead,
    ) -> list[models.Enrollment]:
        """Retire the active reference a step-up promotion replaces; the
        remaining active references."""
        target = next((row for row in current if row.enrollment_id == enrollment_id), None)
        if (
            source != "step_up_promotion"
            or target is None
            or target.source not in SUPERSEDABLE_SOURCES
        ):
            raise invalid_field(
                "supersedes_enrollment_id",
                "a step_up_promotion may only supersede the customer's active "
                "onboarding_selfie or step_up_promotion reference",
            )
        target.active = False
        target.retired_at = utcnow()
        target.retire_reason = "superseded"
        target.gallery_seq = self._next_seq(head)
        return [row for row in current if row is not target]

    def retire(
        self, session: Session, org_id: str, customer_id: str, reason: str, enrollment_id: str = ""
    ) -> list[GalleryEntry]:
        """Retire the customer's references (or only `enrollment_id`)."""
        head = self._lock_gallery(session, org_id)
        query = _customer_enrollments(org_id, customer_id).where(
            models.Enrollment.retired_at.is_(None)
        )
        if enrollment_id:
            query = query.where(models.Enrollment.enrollment_id == enrollment_id)
        rows = session.scalars(query).all()
        if not rows:
            return []
        seq = self._next_seq(head)
        now = utcnow()
        for row in rows:
            row.active = False
            row.retired_at = now
            row.retire_reason = reason
            row.gallery_seq = seq
        return [GalleryEntry(row.enrollment_id, customer_id, None) for row in rows]

    def activate(
        self, session: Session, org_id: str, customer_id: str, enrollment_id: str
    ) -> EnrollResult:
        """Lift the hold on a reference stored inactive (an analyst approved
        it); it becomes active by the same source rule as Enroll."""
        head = self._lock_gallery(session, org_id)
        customer = _customer_enrollments(org_id, customer_id)
        row = session.scalar(
            customer.where(
                models.Enrollment.enrollment_id == enrollment_id,
                models.Enrollment.retired_at.is_(None),
            )
        )
        if row is None:
            raise NotFound("no such held reference for this customer", "ENROLLMENT_NOT_FOUND")
        key = session.get(models.DataKey, row.data_key_id)
        assert key is not None
        vector = self.open_row(row, key)  # KEY_DESTROYED once the customer was erased
        if row.active:
            return EnrollResult(_record(row), [])
        current = session.scalars(customer.where(models.Enrollment.active.is_(True))).all()
        if not all(row.source_priority <= other.source_priority for other in current):
            return EnrollResult(_record(row), [])
        seq = self._next_seq(head)
        changes = []
        for other in current:
            other.active = False
            other.gallery_seq = seq
            changes.append(GalleryEntry(other.enrollment_id, customer_id, None))
        row.active = True
        row.gallery_seq = seq
        changes.append(GalleryEntry(row.enrollment_id, customer_id, vector))
        return EnrollResult(_record(row), changes)

    def shred(
        self, session: Session, org_id: str, customer_id: str
    ) -> tuple[int, datetime, list[GalleryEntry]]:
        """Retire every reference and destroy the customer's template keys, in
        one transaction (the retirement's change number tells replicas to drop
        the vectors they hold)."""
        retired = self.retire(session, org_id, customer_id, "erasure")
        destroyed, when = self.keys.destroy_customer_keys(
            session, org_id, customer_id, (TEMPLATE_PURPOSE,)
        )
        return destroyed, when, retired

    # --- reads -------------------------------------------------------------------

    def active_reference(self, session: Session, org_id: str, customer_id: str) -> Reference:
        """The customer's active reference, opened.

        One prebuilt statement over plain columns: this is the per-verification read.
        """
        found = session.execute(
            _ACTIVE_REFERENCE, {"org_id": org_id, "customer_id": customer_id}
        ).first()
        if found is None:
            keys = self.keys.customer_keys(session, org_id, customer_id, TEMPLATE_PURPOSE)
            if any(k.destroyed_at is not None for k in keys):
                raise KeyDestroyed(
                    "the customer was erased: their key material is destroyed "
                    "and no reference can be opened"
                )
            raise FailedPrecondition(
                "the customer has no active face reference", "NO_ACTIVE_ENROLLMENT"
            )
        contract = EmbeddingContract(found.model_id, found.model_version, found.dimension)
        if not contract.same_gallery(self.contract):
            raise contract_mismatch(self.contract, contract, "the customer's reference")
        key = KeyView(*(getattr(found, f"key_{column.key}") for column in KEY_COLUMNS))
        # The row has the columns _record and open_row read of an Enrollment.
        return Reference(_record(found), self.open_row(found, key))  # type: ignore[arg-type]

    def list(
        self, session: Session, org_id: str, customer_id: str, include_retired: bool
    ) -> list[EnrollmentRecord]:
        query = _customer_enrollments(org_id, customer_id)
        if not include_retired:
            query = query.where(models.Enrollment.retired_at.is_(None))
        rows = session.scalars(
            query.order_by(models.Enrollment.created_at.desc(), models.Enrollment.enrollment_id)
        )
        return [_record(row) for row in rows]

    def live_enrollments(
        self, session: Session, org_id: str, enrollment_ids: Sequence[str]
    ) -> set[str]:
        """Which of these are active with live keys now (the database's word, not a replica's)."""
        if not enrollment_ids:
            return set()
        rows = session.execute(
            select(models.Enrollment.enrollment_id)
            .join(models.DataKey, models.DataKey.key_id == models.Enrollment.data_key_id)
            .where(
                models.Enrollment.org_id == org_id,
                models.Enrollment.enrollment_id.in_(enrollment_ids),
                models.Enrollment.active.is_(True),
                models.DataKey.destroyed_at.is_(None),
            )
        )
        return {r for (r,) in rows}

    # --- replica convergence -------------------------------------------------------

    def gallery_heads(self, session: Session) -> dict[str, int]:
        return dict(
            session.execute(select(models.GalleryHead.org_id, models.GalleryHead.last_seq)).all()
        )

    def changes_since(
        self,
        session: Session,
        org_id: str,
        after_seq: int,
        upto_seq: int,
        stats: dict[str, int] | None = None,
    ) -> Iterator[GalleryEntry]:
        """The current state of every row of the organisation changed in
        (after_seq, upto_seq]: active references decrypted, the rest as removals.

        Reads plain columns, not ORM objects: a replica start decrypts the
        whole gallery this way. A row that cannot be opened (altered, or a key
        missing from the keyring) is left out of the gallery and counted,
        never allowed to stop the others: the database stays the authority and
        Verify reports the row's own error when it is used.
        """
        enrollment = models.Enrollment
        rows = session.execute(
            select(
                enrollment.enrollment_id,
                enrollment.org_id,
                enrollment.customer_id,
                enrollment.model_id,
                enrollment.dimension,
                enrollment.template_format,
                enrollment.sealed_template,
                enrollment.active,
                *KEY_COLUMNS,
            )
            .join(models.DataKey, models.DataKey.key_id == enrollment.data_key_id)
            .where(
                enrollment.org_id == org_id,
                enrollment.gallery_seq > after_seq,
                enrollment.gallery_seq <= upto_seq,
            )
            .order_by(enrollment.gallery_seq)
            .execution_options(yield_per=2000)
        )
        for columns in rows:
            (
                enrollment_id,
                row_org,
                customer_id,
                model_id,
                dimension,
                template_format,
                sealed,
                active,
            ) = columns[:8]
            key = KeyView(*columns[8:])
            if (
                not active
                or key.destroyed_at is not None
                or model_id != self.contract.model_id
                or dimension != self.contract.dimension
            ):
                yield GalleryEntry(enrollment_id, customer_id, None)
                continue
            try:
                material = self.keys.open_key(key)
                aad = envelope.template_aad(
                    row_org, customer_id, enrollment_id, model_id, dimension, template_format
                )
                plaintext = envelope.open_sealed(material, sealed or b"", aad)
                vector = templates.decode(plaintext, template_format, dimension)
            except (DataLoss, FailedPrecondition, ValueError):
                if stats is not None:
                    stats["unreadable"] = stats.get("unreadable", 0) + 1
                yield GalleryEntry(enrollment_id, customer_id, None)
                continue
            yield GalleryEntry(enrollment_id, customer_id, vector)
