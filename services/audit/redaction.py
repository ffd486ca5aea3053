"""An erased customer's evidence hashes leave the chain; the chain still verifies.

kyc-tier records its erasure's completion as a `customer.erase` entry
(outcome success, subject `customer:<id>`), relayed by its ordered outbox
after every earlier entry about that customer. The audit service reads it
from the chain itself (as it reads legal holds, holds.py: it reads no other
service's tables): when it appends such an entry, the earlier entries of that
tenant and subject lose their evidence hashes (the capture digests kyc-tier
also dropped from its own rows), in the same transaction, and a
`audit.evidence_redacted` entry records it (how many, up to which sequence).

Each redacted entry keeps its `entry_hmac` (the next entry links to it, and
checkpoints name it) and gains a redaction MAC: the HMAC, under the chain's
primary key, of the entry as kept plus that original MAC. Verification
checks the redaction MAC instead of the original one, so an entry's
actor, action, details, ... stay as tamper-evident as before, a redacted
entry whose evidence reappears fails, and only a holder of the chain's key
can redact. An entry is redacted only if its own MAC verifies first (a
broken one is left for `verify` to report).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from identity_crypto.keyring import Keyring
from services.audit import models
from services.audit.chain import (
    Draft,
    Entry,
    chained_request_id,
    compute_hmac,
    compute_redaction_hmac,
)

ERASURE = "customer.erase"
REDACTED = "audit.evidence_redacted"
ACTOR = "service:audit"


def erasures(entries: Sequence[Entry]) -> list[Entry]:
    """The completed customer erasures among freshly chained entries."""
    return [
        e
        for e in entries
        if e.action == ERASURE and e.outcome == "success" and e.subject.startswith("customer:")
    ]


def redact_before(
    session: Session,
    keyring: Keyring,
    erasure: Entry,
    to_entry: Callable[[models.AuditEntry], Entry],
) -> Draft | None:
    """Redact the evidence hashes of the entries about the erased customer
    chained before `erasure`; the entry recording it (None: nothing to redact)."""
    table = models.AuditEntry
    rows = session.scalars(
        select(table).where(
            table.tenant_id == erasure.tenant_id,
            table.subject == erasure.subject,
            table.sequence < erasure.sequence,
            table.redaction_hmac.is_(None),
        )
    )
    return _record(erasure, _redact(session, keyring, rows, to_entry), erasure.sequence)


def redact_late(
    session: Session,
    keyring: Keyring,
    written: Sequence[Entry],
    to_entry: Callable[[models.AuditEntry], Entry],
) -> list[Draft]:
    """Redact the evidence hashes `written` brings about customers whose
    erasure the chain already holds: an entry kyc-tier read from its outbox
    before the erasure blanked it there (another replica's relay) and
    delivered after `customer.erase`. The entries recording it."""
    table = models.AuditEntry
    carrying = [e for e in written if e.evidence_hashes and e.subject.startswith("customer:")]
    if not carrying:
        return []
    about = sorted({(e.tenant_id, e.subject) for e in carrying})
    erased_at = dict(
        ((tenant, subject), sequence)
        for tenant, subject, sequence in session.execute(
            select(table.tenant_id, table.subject, func.min(table.sequence))
            .where(
                table.action == ERASURE,
                table.outcome == "success",
                or_(*(and_(table.tenant_id == t, table.subject == s) for t, s in about)),
            )
            .group_by(table.tenant_id, table.subject)
        )
    )
    records = []
    for (tenant, subject), erased in sorted(erased_at.items()):
        late = [
            e
            for e in carrying
            if (e.tenant_id, e.subject) == (tenant, subject) and e.sequence > erased
        ]
        if not late:
            continue
        rows = session.scalars(select(table).where(table.sequence.in_([e.sequence for e in late])))
        record = _record(late[-1], _redact(session, keyring, rows, to_entry), late[-1].sequence + 1)
        if record is not None:
            records.append(record)
    return records


def _redact(
    session: Session,
    keyring: Keyring,
    rows: Iterable[models.AuditEntry],
    to_entry: Callable[[models.AuditEntry], Entry],
) -> int:
    """Drop the evidence hashes of `rows` whose own MAC verifies, sealing each
    with a redaction MAC; how many."""
    table = models.AuditEntry
    redacted = 0
    for row in rows:
        if not row.evidence_hashes:
            continue
        entry = to_entry(row)
        key = keyring.get(entry.key_id)
        if key is None or not hmac.compare_digest(compute_hmac(key, entry), entry.entry_hmac):
            continue
        kept = replace(entry, evidence_hashes={}, redaction_key_id=keyring.primary_id)
        session.execute(
            update(table)
            .where(table.sequence == entry.sequence)
            .values(
                evidence_hashes={},
                redaction_hmac=compute_redaction_hmac(keyring.primary, kept),
                redaction_key_id=kept.redaction_key_id,
            )
        )
        redacted += 1
    return redacted


def _record(about: Entry, redacted: int, before_sequence: int) -> Draft | None:
    """The `audit.evidence_redacted` entry for `redacted` entries of `about`'s
    customer, all chained before `before_sequence` (None: nothing redacted)."""
    if not redacted:
        return None
    return Draft(
        tenant_id=about.tenant_id,
        actor=ACTOR,
        action=REDACTED,
        subject=about.subject,
        outcome="success",
        # An erasure chained before request ids were held to their rule may hold one.
        request_id=chained_request_id(about.request_id),
        details={"entries": str(redacted), "before_sequence": str(before_sequence)},
    )


def redact_erased(
    session: Session, keyring: Keyring, to_entry: Callable[[models.AuditEntry], Entry]
) -> list[Draft]:
    """For every completed erasure the chain holds (those recorded before the
    redaction existed): redact what is left; the entries recording it."""
    table = models.AuditEntry
    found = session.scalars(
        select(table)
        .where(table.action == ERASURE, table.outcome == "success")
        .order_by(table.sequence)
    )
    drafts = [
        redact_before(session, keyring, e, to_entry) for e in erasures([to_entry(r) for r in found])
    ]
    return [d for d in drafts if d is not None]


__all__ = ["ERASURE", "REDACTED", "erasures", "redact_before", "redact_erased", "redact_late"]
