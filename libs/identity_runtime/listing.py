"""Listing RPCs, the servicer side: what a listing flow is asked, what it answers.

A paged listing flow takes the caller's organisation, what to list (a query,
a customer, a webhook, ...) and the page the request asks for, and answers a
page: its items and the next page's token. A listing reply holds the items,
each converted, in its one repeated field (and, paged, the next page's token).

Page tokens are bound here to the listing, the organisation and the filter
that made them (identity_runtime.page_tokens, AIP-158): a listing flow sees
only its own position tokens, and a token of another listing or filter is
refused with INVALID_FIELD page_token before the flow is asked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar, cast

from google.protobuf.message import Message

from identity_runtime import page_tokens
from identity_runtime.context import require_org

M = TypeVar("M", bound=Message)
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
# What a listing lists (its query or owner) and the page it answers.
Q = TypeVar("Q")
P = TypeVar("P")


class PageRequest(Protocol):
    """A List… request's paging fields (every paged request has both)."""

    @property
    def page_size(self) -> int: ...

    @property
    def page_token(self) -> str: ...


class ListedPage(Protocol[T_co]):
    @property
    def items(self) -> Sequence[T_co]: ...

    @property
    def next_page_token(self) -> str: ...


async def org_page(
    listing: Callable[[str, Q, int, str], Awaitable[P]], what: Q, request: PageRequest
) -> P:
    """The page `request` asks for of the caller organisation's `listing` of `what`."""
    return await _bound_page(listing, require_org(), what, request)


# A paged request carrying a filter to convert.
R = TypeVar("R", bound=PageRequest)


async def filtered_org_page(
    listing: Callable[[str, Q, int, str], Awaitable[P]],
    convert: Callable[[R], Q],
    request: R,
) -> P:
    """As `org_page`, the filter converted from the request: the caller's
    organisation is checked first, so a caller without one is refused as such
    (UNAUTHENTICATED / TENANT_MISSING) whatever its filter holds."""
    org_id = require_org()
    return await _bound_page(listing, org_id, convert(request), request)


async def _bound_page(
    listing: Callable[[str, Q, int, str], Awaitable[P]], org_id: str, what: Q, request: PageRequest
) -> P:
    position = open_page_token(request, org_id)
    page = await listing(org_id, what, request.page_size, position)
    return bound_page(page, request, org_id)


def _message(request: PageRequest) -> Message:
    if not isinstance(request, Message):
        raise TypeError("a paged request is a protobuf message")
    return request


def open_page_token(request: PageRequest, org_id: str) -> str:
    """The listing's own position token inside `request.page_token` ("" for
    the first page); INVALID_FIELD page_token when the token is malformed or
    was returned for another listing, organisation or filter."""
    return page_tokens.open_token(request.page_token, _message(request), org_id)


def bound_page_token(position: str, request: PageRequest, org_id: str) -> str:
    """The next_page_token to return for a listing's own `position` token."""
    return page_tokens.seal(position, _message(request), org_id)


def bound_page(page: P, request: PageRequest, org_id: str) -> P:
    """`page` (a dataclass with next_page_token) with its token bound to `request`."""
    token = bound_page_token(cast(ListedPage[Any], page).next_page_token, request, org_id)
    return cast(P, dataclasses.replace(cast(Any, page), next_page_token=token))


def list_reply(cls: type[M], items: Iterable[T], /, **field: Callable[[T], Any]) -> M:
    """`cls` holding `items`, each converted. The one keyword names the reply's
    repeated field and converts an item:
    `list_reply(ListWebhooksResponse, found, webhooks=resources.webhook)`."""
    name, convert = _repeated(field)
    return cls(**{name: [convert(item) for item in items]})


def page_reply(cls: type[M], page: ListedPage[T], /, **field: Callable[[T], Any]) -> M:
    """`cls` holding the page's items, each converted (the keyword as for
    `list_reply`), and its next_page_token."""
    name, convert = _repeated(field)
    items = [convert(item) for item in page.items]
    return cls(**{name: items}, next_page_token=page.next_page_token)


def _repeated(field: dict[str, Callable[[T], Any]]) -> tuple[str, Callable[[T], Any]]:
    if len(field) != 1:
        raise TypeError(f"a listing reply fills one repeated field, not {sorted(field)}")
    [(name, convert)] = field.items()
    return name, convert
