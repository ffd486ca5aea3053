"""The one rule for a request id a caller chooses: an HTTP client's
`X-Request-Id` at the gateway, a direct gRPC caller's `x-request-id` at every
service.

The id is echoed, logged on every hop and stored as is: in the audit chain,
which no erasure removes, and in verification and attempt rows. So it is
held to more than the log scrubbers (which skip digits joined to a letter or
"_", to keep hex ids readable): 1-128 of `A-Z a-z 0-9 . _ : -` starting with
a letter or digit, nothing the scrubbers mask (a NIK, an e-mail, a phone
number, also in groups), and no run of 9 or more digits, where single
separators may part them (3273_0241_0795_0003, Siti_081234567890,
a6281234567890). A UUID is exempt from the digit-run rule: its digit groups
are not data, and partners commonly send one. An id that fails is replaced by
a new one, not refused (docs/gateway.md, docs/grpc-clients.md).
"""

from __future__ import annotations

import re

from identity_runtime.context import new_request_id
from identity_runtime.logs import scrub_text

MAX_REQUEST_ID_LENGTH = 128
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_DIGIT_RUN = re.compile(r"[0-9](?:[._:\-]?[0-9]){8,}")
# A UUID, with its dashes or as the platform writes its own request ids (32
# hex digits): random, such an id holds a run of 9 digits by chance, so only
# the scrubbers judge it.
_UUID = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[0-9a-f]{32}"
)


def client_request_id(value: str | None) -> str | None:
    """`value` when it is a request id that can hold no personal data, else None."""
    if not value or not _REQUEST_ID.fullmatch(value):
        return None
    uuid_shaped = _UUID.fullmatch(value) is not None
    digit_run = _DIGIT_RUN.search(value) is not None
    if digit_run and not uuid_shaped:
        return None
    if uuid_shaped and not digit_run:
        # Every mesh call carries one (the gateway's or a service's own id):
        # hex and dashes, no 9 digits even with separators, under 100
        # characters, so nothing the scrubbers mask; they are not run.
        return value
    return value if scrub_text(value) == value else None


def request_id_or_new(value: str | None) -> str:
    """The caller's request id when `client_request_id` takes it, else a new one."""
    return client_request_id(value) or new_request_id()


__all__ = ["MAX_REQUEST_ID_LENGTH", "client_request_id", "request_id_or_new"]
