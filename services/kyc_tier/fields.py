"""Building a dataclass from a value with fields of the same names.

Rows, domain values and the contract's messages spell most fields alike; a
converter names only the fields that need converting and takes the rest by
name, so a field added to both sides is carried without another line.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def same_named(cls: type[T], source: object, /, **converted: Any) -> T:
    """`cls` (a dataclass) from `source`'s attributes of the same names; the
    fields given in `converted` take those values instead. A field `source`
    lacks keeps its default (and without one, `cls` refuses to be built)."""
    values = {
        f.name: converted[f.name] if f.name in converted else getattr(source, f.name)
        for f in dataclasses.fields(cls)
        if f.init and (f.name in converted or hasattr(source, f.name))
    }
    return cls(**values)
