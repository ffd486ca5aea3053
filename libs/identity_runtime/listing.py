"""Listing RPCs, the servicer side: what a listing flow is asked, what it answers.

A paged listing flow takes the caller's organisation, what to list (a query,
a customer, a webhook, ...) and the page the request asks for, and answers a
page: its items and the next page's token. A listing reply holds the items,
each converted, in its one repeated field (and, paged, the next page's token).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from google.protobuf.message import Message

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
    return await listing(require_org(), what, request.page_size, request.page_token)


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
    return await listing(org_id, convert(request), request.page_size, request.page_token)


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
