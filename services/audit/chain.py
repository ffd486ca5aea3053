"""The HMAC chain: canonical entries, their MACs, and the verifier (domain, no I/O).

Each entry's `entry_hmac` is HMAC-SHA256, under the key named by `key_id`,
of the canonical JSON of the entry's content and the previous entry's
`entry_hmac` (`previous_hmac`, "" for the first). The position (`sequence`)
is not inside the MAC: the chain itself fixes the order, which is what lets
the verifier tell an edited entry from a deleted, inserted or moved one.

What the chain proves, and what it does not: anyone without an HMAC key
cannot alter, remove, add or reorder entries without `verify` reporting the
first bad position. Removing the newest entries *and* rewinding the head row
is only detectable against a head recorded elsewhere (a published anchor, see
`checkpoint`), as with any hash chain kept in the database it protects.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from identity_crypto.keyring import Keyring
from identity_runtime.context import ACTOR_KINDS
from identity_runtime.errors import PermissionDenied, invalid_field
from identity_runtime.logs import mask_id_numbers
from identity_runtime.request_ids import MAX_REQUEST_ID_LENGTH, client_request_id

CANONICAL_VERSION = 1
OUTCOMES = ("success", "denied", "failed")

ACTOR_PATTERN = re.compile(rf"^({'|'.join(ACTOR_KINDS)}):[A-Za-z0-9_.\-]{{1,100}}$")
ACTION_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
SUBJECT_PATTERN = re.compile(r"^[a-z][a-z0-9_]*:[A-Za-z0-9_.\-]{1,100}$")
ENTRY_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
MAP_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# Personal data that must never be written to the log: an e-mail address, a
# NIK or an Indonesian phone number (also in groups: the log scrubbers'
# shapes, `mask_id_numbers`). Tokens, not substrings, so hex digests and ids
# that happen to hold digit runs pass.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
MAX_MAP_ENTRIES = 32
# Entries the audit service acts on, and the one mesh service that may append
# each: an erasure redacts the customer's evidence (redaction.py), a
# customer's legal hold keeps their entries from the purge (holds.py). The
# audit service's own records (`audit.*`: redactions, operators' holds) are
# appended by no caller.
APPENDED_ONLY_BY = {"customer.erase": "kyc-tier", "customer.legal_hold": "kyc-tier"}
OWN_ACTIONS = "audit."
MAX_DETAIL_CHARS = 500


@dataclass(frozen=True)
class Draft:
    """An entry as a caller asks for it (validated, before it has a place)."""

    tenant_id: str
    actor: str
    action: str
    subject: str
    outcome: str
    request_id: str
    evidence_hashes: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, str] = field(default_factory=dict)
    # A client's key for the entry (e.g. "kyc-tier:outbox:<id>"): an entry
    # whose key the chain already holds is not appended again. Outside the
    # MAC (a delivery key, not content); "" = none.
    entry_key: str = ""


@dataclass(frozen=True, kw_only=True)
class Entry(Draft):
    """A draft as the chain recorded it: its place, its time and its MAC."""

    sequence: int
    entry_id: str
    recorded_at: datetime
    previous_hmac: str
    entry_hmac: str
    key_id: str
    # Set when the entry's evidence hashes were redacted (an erased customer's
    # capture digests, services/audit/redaction.py): the entry without them,
    # MAC'd under this key, stands in for `entry_hmac`'s own check.
    redaction_hmac: str = ""
    redaction_key_id: str = ""


def _looks_personal(value: str) -> bool:
    return redact(value) != value


def redact(value: str) -> str:
    value = _EMAIL.sub("<email>", value)
    return mask_id_numbers(value)


def chained_request_id(request_id: str) -> str:
    """`request_id`, or "" when the request id rule (identity_runtime.request_ids)
    does not take it: it could hold a name, an e-mail or a NIK."""
    return client_request_id(request_id) or ""


def validate_draft(draft: Draft) -> Draft:
    """Refuse malformed entries; redact personal data from details.

    The log keeps ids, codes and hashes. Structural fields that are wrong
    (actor, action, subject, outcome, evidence that is not a digest) are
    refused, naming the field and never echoing the value. A details value
    that holds a NIK, an e-mail address or a phone number (typically a free
    text reason a partner typed) is stored with that part replaced by
    <nik>/<email>/<phone>, and a request id the services would not have
    taken from a caller (an outbox row written before they held ids to the
    rule) is stored as "": refusing either would make an at-least-once relay
    retry an entry that can never succeed.
    """
    if not ACTOR_PATTERN.match(draft.actor):
        raise invalid_field(
            "actor", f"must be <kind>:<id>, the kind one of {', '.join(ACTOR_KINDS)}"
        )
    if not ACTION_PATTERN.match(draft.action) or len(draft.action) > 64:
        raise invalid_field(
            "action",
            "must be a dotted lower-case name such as kyc.tier_changed (at most 64 characters)",
        )
    if not SUBJECT_PATTERN.match(draft.subject) or _looks_personal(draft.subject):
        raise invalid_field("subject", "must look like <kind>:<internal id>, e.g. customer:<id>")
    if _looks_personal(draft.actor):
        raise invalid_field("actor", "must name an internal id, not personal data")
    if draft.outcome not in OUTCOMES:
        raise invalid_field("outcome", "must be SUCCESS, DENIED or FAILED")
    if len(draft.request_id) > MAX_REQUEST_ID_LENGTH:
        raise invalid_field("request_id", f"at most {MAX_REQUEST_ID_LENGTH} characters")
    if draft.entry_key and (
        not ENTRY_KEY_PATTERN.match(draft.entry_key) or _looks_personal(draft.entry_key)
    ):
        raise invalid_field(
            "entry_key", "at most 128 letters, digits and _.:- naming an internal id"
        )
    for name, mapping in (("evidence_hashes", draft.evidence_hashes), ("details", draft.details)):
        if len(mapping) > MAX_MAP_ENTRIES:
            raise invalid_field(name, f"at most {MAX_MAP_ENTRIES} entries")
        for key in mapping:
            if not MAP_KEY_PATTERN.match(key):
                raise invalid_field(name, "keys must be short lower-case identifiers")
    for key, value in draft.evidence_hashes.items():
        if not SHA256_HEX.match(value):
            raise invalid_field(f"evidence_hashes.{key}", "must be a lower-case hex SHA-256 digest")
    details = {}
    for key, value in draft.details.items():
        if len(value) > MAX_DETAIL_CHARS:
            raise invalid_field(f"details.{key}", f"at most {MAX_DETAIL_CHARS} characters")
        details[key] = redact(value) if _looks_personal(value) else value
    return replace(draft, details=details, request_id=chained_request_id(draft.request_id))


def check_appender(draft: Draft, issuer: str) -> Draft:
    """PERMISSION_DENIED / CALLER_NOT_ALLOWED unless the mesh service `issuer`
    may append `draft`'s action (APPENDED_ONLY_BY, OWN_ACTIONS)."""
    owner = APPENDED_ONLY_BY.get(draft.action)
    if draft.action.startswith(OWN_ACTIONS) or (owner is not None and issuer != owner):
        raise PermissionDenied(
            f"{draft.action} entries are appended by "
            + (f"{owner} only" if owner else "the audit service itself"),
            "CALLER_NOT_ALLOWED",
            {"issuer": issuer, "action": draft.action},
        )
    return draft


def timestamp_text(value: datetime) -> str:
    """RFC 3339 UTC with microseconds: the form inside the MAC."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(entry: Entry | dict) -> bytes:
    get: Callable[[str], Any] = (
        entry.get if isinstance(entry, dict) else lambda name: getattr(entry, name)
    )
    recorded_at = get("recorded_at")
    document = {
        "v": CANONICAL_VERSION,
        "entry_id": get("entry_id"),
        "recorded_at": recorded_at if isinstance(recorded_at, str) else timestamp_text(recorded_at),
        "tenant_id": get("tenant_id"),
        "actor": get("actor"),
        "action": get("action"),
        "subject": get("subject"),
        "outcome": get("outcome"),
        "request_id": get("request_id"),
        "evidence_hashes": dict(get("evidence_hashes")),
        "details": dict(get("details")),
        "previous_hmac": get("previous_hmac"),
        "key_id": get("key_id"),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def compute_hmac(key: bytes, entry: Entry | dict) -> str:
    return hmac.new(key, canonical(entry), hashlib.sha256).hexdigest()


def redaction_message(entry: Entry) -> bytes:
    """What a redaction MAC covers: the entry as kept (its evidence hashes
    gone), its original MAC (which the next entry links to) and the key."""
    document = {
        "v": CANONICAL_VERSION,
        "redacted": canonical(entry).decode(),
        "entry_hmac": entry.entry_hmac,
        "redaction_key_id": entry.redaction_key_id,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def compute_redaction_hmac(key: bytes, entry: Entry) -> str:
    return hmac.new(key, redaction_message(entry), hashlib.sha256).hexdigest()


def authentic(entry: Entry, keyring: Keyring) -> bool | None:
    """Whether the entry's content is what its MAC covers (None: a key it
    names is not in the keyring). A redacted entry is checked against its
    redaction MAC, and must hold no evidence hashes any more."""
    key = keyring.get(entry.key_id)
    if key is None:
        return None
    if not entry.redaction_hmac:
        return hmac.compare_digest(compute_hmac(key, entry), entry.entry_hmac)
    redaction_key = keyring.get(entry.redaction_key_id)
    if redaction_key is None:
        return None
    return not entry.evidence_hashes and hmac.compare_digest(
        compute_redaction_hmac(redaction_key, entry), entry.redaction_hmac
    )


def checkpoint_message(
    sequence: int,
    entry_hmac: str,
    entry_recorded_at: datetime,
    created_at: datetime,
    kind: str,
    key_id: str,
) -> bytes:
    document = {
        "v": CANONICAL_VERSION,
        "checkpoint": sequence,
        "entry_hmac": entry_hmac,
        "entry_recorded_at": timestamp_text(entry_recorded_at),
        "created_at": timestamp_text(created_at),
        "kind": kind,
        "key_id": key_id,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


# --- verification -------------------------------------------------------------------

ENTRY_ALTERED = "ENTRY_ALTERED"
ENTRY_MISSING = "ENTRY_MISSING"
ENTRY_INSERTED = "ENTRY_INSERTED"
ENTRIES_REORDERED = "ENTRIES_REORDERED"
UNKNOWN_KEY = "UNKNOWN_KEY"
CHECKPOINT_INVALID = "CHECKPOINT_INVALID"
# The newest entries are gone and the head rewound with them: a signed
# checkpoint outside the database names a sequence past the head.
TAIL_TRUNCATED = "TAIL_TRUNCATED"


@dataclass(frozen=True)
class VerifyReport:
    intact: bool
    entries_checked: int
    first_bad_sequence: int = 0
    problem: str = ""
    # Where verification started and the last good link it reached.
    from_sequence: int = 1
    last_sequence: int = 0
    last_hmac: str = ""


@dataclass(frozen=True)
class Anchor:
    """Where a verification starts: the position before the first entry
    checked and the MAC that entry must link to."""

    sequence: int
    entry_hmac: str


# How far the verifier looks around a broken link to tell a moved entry from
# a missing one. Detection never depends on it; only the diagnosis does.
CLASSIFY_WINDOW = 256


def verify_entries(
    entries: Iterable[Entry],
    keyring: Keyring,
    anchor: Anchor = Anchor(0, ""),
    head: Anchor | None = None,
    anchors: Mapping[int, str] | None = None,
) -> VerifyReport:
    """Walk entries in ascending sequence and report the first bad position.

    `head` is the chain head row (last sequence and MAC): entries beyond it
    were inserted, and a head beyond the last entry means entries at the end
    were deleted. `anchors` (sequence -> entry MAC recorded at a checkpoint)
    must agree with the entries they name. Diagnosis at a broken position p (the entry there is r):
      - a gap in sequence numbers                   -> ENTRY_MISSING at the gap
      - r's key id is not in the keyring            -> UNKNOWN_KEY
      - r's own MAC fails and the next entry links
        to r's predecessor (or r is past the head)  -> ENTRY_INSERTED (a forged entry)
      - r's own MAC fails otherwise                 -> ENTRY_ALTERED
      - r is authentic but links to a later entry,
        or is an earlier entry placed here          -> ENTRIES_REORDERED
      - r is authentic and links to nothing here    -> ENTRY_MISSING (its predecessor was removed)
    """
    expected = anchor.sequence + 1
    previous = anchor.entry_hmac
    checked = 0
    recent: deque[str] = deque(maxlen=CLASSIFY_WINDOW)
    window: deque[Entry] = deque()
    iterator = iter(entries)
    exhausted = False

    def fill() -> None:
        nonlocal exhausted
        while not exhausted and len(window) < CLASSIFY_WINDOW:
            try:
                window.append(next(iterator))
            except StopIteration:
                exhausted = True

    def report(position: int, problem: str) -> VerifyReport:
        return VerifyReport(
            False, checked, position, problem, anchor.sequence + 1, expected - 1, previous
        )

    fill()
    while window:
        entry = window.popleft()
        fill()
        if entry.sequence != expected:
            return report(expected, ENTRY_MISSING)
        self_ok = authentic(entry, keyring)
        if self_ok is None:
            return report(entry.sequence, UNKNOWN_KEY)
        link_ok = entry.previous_hmac == previous
        if not (self_ok and link_ok):
            following = window[0] if window else None
            next_links_over = following is not None and following.previous_hmac == previous
            if not self_ok:
                # A forged entry squeezed in, or one beyond the head: inserted.
                if next_links_over or (head is not None and entry.sequence > head.sequence):
                    return report(entry.sequence, ENTRY_INSERTED)
                return report(entry.sequence, ENTRY_ALTERED)
            # Authentic entry in the wrong place.
            if any(later.entry_hmac == entry.previous_hmac for later in window):
                return report(entry.sequence, ENTRIES_REORDERED)
            if next_links_over:
                # An authentic entry from elsewhere placed here.
                return report(
                    entry.sequence,
                    ENTRIES_REORDERED if entry.previous_hmac in recent else ENTRY_INSERTED,
                )
            return report(entry.sequence, ENTRY_MISSING)
        if head is not None and entry.sequence > head.sequence:
            return report(entry.sequence, ENTRY_INSERTED)
        if anchors and anchors.get(entry.sequence, entry.entry_hmac) != entry.entry_hmac:
            return report(entry.sequence, ENTRY_ALTERED)
        recent.append(entry.entry_hmac)
        previous = entry.entry_hmac
        expected += 1
        checked += 1
    if head is not None and head.sequence >= expected:
        return report(expected, ENTRY_MISSING)
    if anchors and max(anchors) >= expected:
        # A checkpoint names an entry past the end: the tail was cut off.
        return report(expected, ENTRY_MISSING)
    if (
        head is not None
        and head.sequence == expected - 1
        and head.sequence > anchor.sequence
        and head.entry_hmac != previous
    ):
        return report(head.sequence, ENTRY_ALTERED)
    return VerifyReport(True, checked, 0, "", anchor.sequence + 1, expected - 1, previous)


def entry_to_json(entry: Entry) -> dict:
    return {
        "sequence": entry.sequence,
        "entry_id": entry.entry_id,
        "recorded_at": timestamp_text(entry.recorded_at),
        "tenant_id": entry.tenant_id,
        "actor": entry.actor,
        "action": entry.action,
        "subject": entry.subject,
        "outcome": entry.outcome,
        "request_id": entry.request_id,
        "evidence_hashes": dict(entry.evidence_hashes),
        "details": dict(entry.details),
        "previous_hmac": entry.previous_hmac,
        "entry_hmac": entry.entry_hmac,
        "key_id": entry.key_id,
        **(
            {"redaction_hmac": entry.redaction_hmac, "redaction_key_id": entry.redaction_key_id}
            if entry.redaction_hmac
            else {}
        ),
    }


def entry_from_json(document: dict) -> Entry:
    recorded = datetime.strptime(document["recorded_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=UTC
    )
    return Entry(
        sequence=int(document["sequence"]),
        entry_id=document["entry_id"],
        recorded_at=recorded,
        tenant_id=document["tenant_id"],
        actor=document["actor"],
        action=document["action"],
        subject=document["subject"],
        outcome=document["outcome"],
        request_id=document["request_id"],
        evidence_hashes=document.get("evidence_hashes", {}),
        details=document.get("details", {}),
        previous_hmac=document["previous_hmac"],
        entry_hmac=document["entry_hmac"],
        key_id=document["key_id"],
        redaction_hmac=document.get("redaction_hmac", ""),
        redaction_key_id=document.get("redaction_key_id", ""),
    )


def read_jsonl(lines: Iterable[str]) -> Iterator[Entry]:
    for line in lines:
        if line.strip():
            yield entry_from_json(json.loads(line))
