"""Page tokens bound to the listing, the organisation and the filter that made them.

AIP-158: a page token is only valid for the request that returned it, with
every field but `page_size` (which may change between pages) and
`page_token` unchanged. A service's own token (its position: a creation time
and an id, an audit sequence) says nothing of where it came from, so a token
of one listing, or of one filter, used on another would silently give a
wrong page. The servicer side therefore wraps every token it returns:

    token = base64url(VERSION || digest || inner)   (no padding: URL-safe)
    digest = SHA-256("identity-page-token" 0 listing 0 org 0 filter)[:16]

where `listing` is the request message's full name (one per List… RPC),
`org` the caller's organisation and `filter` the request with `page_size`
and `page_token` cleared, serialised deterministically. A token whose digest
does not match the request is refused with the same INVALID_FIELD
`page_token` as a malformed one.

A plain digest, not an HMAC: the token only has to detect misuse, not hide
or authenticate anything. A forged token can only move the position within
the caller's own organisation's rows of the caller's own filter (the query
always applies both), which the caller may list anyway.

Tokens issued before this binding (the bare inner tokens) are refused as
malformed; a client starts its listing again from the first page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from google.protobuf.message import Message

from identity_runtime.errors import invalid_field

VERSION = b"\x01"
DIGEST_BYTES = 16
_DOMAIN = b"identity-page-token"
# Fields that may differ between the pages of one listing.
_PAGING_FIELDS = ("page_size", "page_token")
MALFORMED = "is not a token this API returned"
MISBOUND = "was returned for another listing or filter; start again from the first page"


def scope_digest(request: Message, org_id: str) -> bytes:
    """What a token of `request`'s listing for `org_id` is bound to."""
    filter_ = type(request)()
    filter_.CopyFrom(request)
    for name in _PAGING_FIELDS:
        if name in filter_.DESCRIPTOR.fields_by_name:
            filter_.ClearField(name)
    listing = request.DESCRIPTOR.full_name.encode()
    hashed = hashlib.sha256(
        b"\x00".join(
            (_DOMAIN, listing, org_id.encode(), filter_.SerializeToString(deterministic=True))
        )
    )
    return hashed.digest()[:DIGEST_BYTES]


def seal(inner: str, request: Message, org_id: str) -> str:
    """The token to return for a next page at `inner` ("" stays "": the last page)."""
    if not inner:
        return ""
    raw = VERSION + scope_digest(request, org_id) + inner.encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def open_token(token: str, request: Message, org_id: str) -> str:
    """The service's own token inside `token` ("" for the first page), or
    INVALID_FIELD page_token if it is malformed or bound to another listing,
    organisation or filter."""
    if not token:
        return ""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        inner = raw[1 + DIGEST_BYTES :].decode()
    except (ValueError, binascii.Error):
        raise invalid_field("page_token", MALFORMED) from None
    if raw[:1] != VERSION or not inner:
        raise invalid_field("page_token", MALFORMED)
    if raw[1 : 1 + DIGEST_BYTES] != scope_digest(request, org_id):
        raise invalid_field("page_token", MISBOUND)
    return inner
