"""The by-name converters every service's mapping uses (identity_runtime.convert)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.liveness.v1 import liveness_pb2
from identity_runtime.convert import (
    enum_names,
    enum_values,
    message,
    same_named,
    time_field,
    timestamp,
)

MOMENT = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


@dataclass(frozen=True)
class DeviceView:
    device_id: str
    customer_id: str
    platform: str | None
    registered_at: datetime
    unrelated: str = "not a field of the message"


def test_message_takes_fields_by_name_and_converts_times() -> None:
    view = DeviceView("dev_1", "cus_1", "android", MOMENT)
    built = message(liveness_pb2.Device, view, algorithm=types_pb2.KEY_ALGORITHM_ED25519)
    assert (built.device_id, built.customer_id, built.platform) == ("dev_1", "cus_1", "android")
    assert built.algorithm == types_pb2.KEY_ALGORITHM_ED25519
    assert built.registered_at.ToDatetime(tzinfo=UTC) == MOMENT


def test_message_leaves_none_unset_and_converted_wins() -> None:
    view = DeviceView("dev_1", "cus_1", None, MOMENT)
    built = message(liveness_pb2.Device, view, device_id="dev_2", registered_at=None)
    assert built.device_id == "dev_2"
    assert built.platform == ""
    assert not built.HasField("registered_at")


def test_same_named_reads_a_message_into_a_dataclass() -> None:
    device = liveness_pb2.Device(device_id="dev_1", customer_id="cus_1", platform="ios")
    view = same_named(DeviceView, device, registered_at=MOMENT)
    assert view == DeviceView("dev_1", "cus_1", "ios", MOMENT)


def test_same_named_refuses_a_missing_field_without_default() -> None:
    with pytest.raises(TypeError):
        same_named(DeviceView, object())


def test_time_field_is_none_only_when_unset() -> None:
    request = liveness_pb2.CheckLivenessRequest()
    assert time_field(request.attestation, "captured_at") is None
    request.attestation.captured_at.CopyFrom(timestamp(MOMENT))
    assert time_field(request.attestation, "captured_at") == MOMENT
    request.attestation.captured_at.CopyFrom(timestamp(datetime(1970, 1, 1, tzinfo=UTC)))
    assert time_field(request.attestation, "captured_at") == datetime(1970, 1, 1, tzinfo=UTC)
    assert timestamp(None) is None


def test_enum_values_round_trip_and_refuse_unknown_names() -> None:
    values = enum_values(types_pb2.KycTier, "KYC_TIER_", ("basic", "premium"))
    assert values == {"basic": types_pb2.KYC_TIER_BASIC, "premium": types_pb2.KYC_TIER_PREMIUM}
    assert enum_names(values) == {
        types_pb2.KYC_TIER_BASIC: "basic",
        types_pb2.KYC_TIER_PREMIUM: "premium",
    }
    with pytest.raises(ValueError):
        enum_values(types_pb2.KycTier, "KYC_TIER_", ("golden",))
