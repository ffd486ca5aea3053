"""Converters every service's `mapping` shares: by-name copies and times.

Rows, domain values and the contract's messages spell most fields alike; a
converter names only the fields that need converting and takes the rest by
name, so a field added to both sides is carried without another line.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from identity_runtime.errors import invalid_field

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")
M = TypeVar("M", bound=Message)
# A contract enum's value type (`types_pb2.KycTier.ValueType`: an int).
V = TypeVar("V", bound=int)
V_co = TypeVar("V_co", bound=int, covariant=True)


class _ContractEnum(Protocol[V_co]):
    def Value(self, name: str) -> V_co: ...


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


def message(cls: type[M], source: object, /, **converted: Any) -> M:
    """`cls` with each field `source` has an attribute of the same name for;
    the fields in `converted` take those values instead. Datetimes become
    timestamps; None leaves a field unset."""
    values = {}
    for name in _field_names(cls.DESCRIPTOR):
        if name in converted:
            value = converted[name]
        elif hasattr(source, name):
            value = getattr(source, name)
        else:
            continue
        if value is not None:
            values[name] = timestamp(value) if isinstance(value, datetime) else value
    return cls(**values)


@functools.cache
def _field_names(descriptor: Descriptor) -> tuple[str, ...]:
    return tuple(field.name for field in descriptor.fields)


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def time_field(message: Message, field: str) -> datetime | None:
    """The message's timestamp `field` as an aware datetime; None when unset."""
    if not message.HasField(field):
        return None
    value: Timestamp = getattr(message, field)
    return value.ToDatetime(tzinfo=UTC)


def enum_values(enum: _ContractEnum[V], prefix: str, names: Iterable[str]) -> dict[str, V]:
    """The contract's value of each domain name: "basic" -> KYC_TIER_BASIC. A name
    the contract lacks fails at import, not on a request."""
    return {name: enum.Value(prefix + name.upper()) for name in names}


def enum_names(values: dict[str, V]) -> dict[int, str]:
    """The inverse of `enum_values`: contract value -> domain name."""
    return {value: name for name, value in values.items()}


def enum_name(names: Mapping[int, str], value: int, field: str) -> str:
    """A request's enum value as its domain name: unset is "" (no filter, or
    the default; the caller says whether it is required), a value the
    contract does not define INVALID_FIELD `field`. Proto3 enums are open: a
    number such as 99 parses (from JSON too) and must not be taken as unset."""
    if not value:
        return ""
    if value not in names:
        raise invalid_field(field, "unknown value")
    return names[value]
