"""`check_reason`: the one rule for reasons chained into the audit log."""

from __future__ import annotations

import pytest

from identity_runtime.errors import DomainError
from identity_runtime.reason_codes import check_reason


@pytest.mark.parametrize(
    "reason",
    [
        "Siti Rahayu",
        "case-123456789",
        # No run of 9 contiguous digits, but a NIK in groups and a dotted
        # phone number: what the log scrubbers mask.
        "3273-0241-0795-0003",
        "327302.4107950003",
        "0812.3456.7890",
        "3273_0241_0795_0003",
        "0812_3456_7890",
    ],
)
def test_a_reason_holding_personal_data_is_refused_without_echoing_it(reason: str) -> None:
    with pytest.raises(DomainError) as caught:
        check_reason(reason)
    assert caught.value.metadata["field"] == "reason"
    assert reason not in caught.value.message


@pytest.mark.parametrize("reason", ["", "case-2026-114", "OJK-2026-001", "data_subject_request"])
def test_a_reason_code_is_accepted(reason: str) -> None:
    check_reason(reason)
