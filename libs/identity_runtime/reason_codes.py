"""Reasons chained into the audit log are codes, never prose.

An erasure's or a legal hold's reason, an organisation's audit hold, a breach
incident reference: each is written into the audit chain, which no erasure
removes, so a sentence naming the customer, a run of 9 or more digits (a
NIK's or a phone number's shape), or anything the log scrubbers mask (a NIK
or a phone number written in groups: 3273-0241-0795-0003, 0812.3456.7890)
must never reach it. One rule for every
way in: the REST routes (kyc-tier's flows), the operator CLI and the audit
service's own hold entries all call `check_reason`.
"""

from __future__ import annotations

import re

from identity_runtime.errors import invalid_field
from identity_runtime.logs import scrub_text

MAX_REASON_LENGTH = 64
REASON_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*", re.ASCII)
LONG_NUMBER = re.compile(r"[0-9]{9,}")


def check_reason(reason: str, field: str = "reason") -> None:
    """INVALID_FIELD `field` unless `reason` is empty or a code without personal data."""
    if len(reason) > MAX_REASON_LENGTH:
        raise invalid_field(field, f"must be at most {MAX_REASON_LENGTH} characters")
    if reason and (
        not REASON_CODE.fullmatch(reason)
        or LONG_NUMBER.search(reason)
        # The scrubbers are the one home of what personal data looks like in text.
        or scrub_text(reason) != reason
    ):
        raise invalid_field(
            field,
            "must be a code (letters, digits and _ . : -, no spaces, no run of 9 digits, "
            "no NIK or phone number even in groups) "
            "without personal data: it is kept in the audit log, which is never erased",
        )


__all__ = ["MAX_REASON_LENGTH", "check_reason"]
