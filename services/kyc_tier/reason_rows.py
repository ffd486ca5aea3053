"""Reasons as rows keep them: a JSON list of {"code", "message"} objects.
`to_stored` writes them, `stored_reasons` reads them back, and
`with_stored_reasons` builds a row's view with its reasons read back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from identity_runtime.convert import same_named
from services.kyc_tier import models
from services.kyc_tier.ports import Reason

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

View = TypeVar("View", bound="DataclassInstance")


def to_stored(reasons: Iterable[Reason]) -> list[dict[str, str]]:
    return [{"code": r.code, "message": r.message} for r in reasons]


def stored_reasons(stored: Sequence[Mapping[str, str]]) -> tuple[Reason, ...]:
    return tuple(Reason(r.get("code", ""), r.get("message", "")) for r in stored)


def with_stored_reasons(
    cls: type[View], row: models.Verification | models.Attempt | models.ReviewItem, /, **more: Any
) -> View:
    """`same_named(cls, row, ...)` with the row's stored reasons read back."""
    return same_named(cls, row, reasons=stored_reasons(row.reasons), **more)
