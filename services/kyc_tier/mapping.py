"""Protobuf <-> domain conversions for kyc-tier."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from identity.common.v1 import options_pb2
from identity.kyc_tier.v1 import api_keys_pb2
from services.kyc_tier.partners import ApiKeyRecord

_SCOPE_TO_PROTO = {"public": options_pb2.SCOPE_PUBLIC, "internal": options_pb2.SCOPE_INTERNAL}
_SCOPE_FROM_PROTO = {v: k for k, v in _SCOPE_TO_PROTO.items()}


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def scopes_from_proto(values: list[int]) -> tuple[str, ...]:
    from identity_runtime.errors import invalid_field

    try:
        return tuple(_SCOPE_FROM_PROTO[v] for v in values)
    except KeyError:
        raise invalid_field("scopes", "only SCOPE_PUBLIC and SCOPE_INTERNAL can be granted") from None


def scopes_to_proto(values: tuple[str, ...]) -> list[int]:
    return [_SCOPE_TO_PROTO[v] for v in values if v in _SCOPE_TO_PROTO]


def api_key(record: ApiKeyRecord) -> api_keys_pb2.ApiKey:
    return api_keys_pb2.ApiKey(
        api_key_id=record.api_key_id,
        name=record.name,
        scopes=scopes_to_proto(record.scopes),
        prefix=record.prefix,
        created_at=timestamp(record.created_at),
        last_used_at=timestamp(record.last_used_at),
        revoked_at=timestamp(record.revoked_at),
    )
