"""A NIK's birth date is judged against the WIB (Asia/Jakarta) date of the
core's clock, not the UTC date: at 18:30 UTC on 26 November it is already
27 November in Jakarta, so a baby born that day has a valid NIK."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from identity_runtime.errors import DomainError
from services.kyc_tier.customers import CustomerInput
from tests.support import unique_name

# 01:30 on 27 November 2026 in Jakarta.
NOW = datetime(2026, 11, 26, 18, 30, tzinfo=UTC)
# Kota Bandung, Coblong; born 27-11-26 (a man, then a woman: day + 40); serial 0003.
BORN_TODAY_WIB = "3273022711260003"
BORN_TODAY_WIB_FEMALE = "3273026711260003"
# Born 28-11-26: tomorrow in Jakarta.
BORN_TOMORROW_WIB = "3273022811260003"


@pytest.fixture(scope="module")
def kyc_clock():
    return lambda: NOW


@pytest.mark.parametrize("nik", [BORN_TODAY_WIB, BORN_TODAY_WIB_FEMALE])
async def test_a_nik_born_on_todays_wib_date_is_accepted_after_17_utc(
    kyc_core, kyc_org, nik: str
) -> None:
    created = await kyc_core.customers.create(
        kyc_org, CustomerInput(external_id=unique_name("ext"), nik=nik)
    )
    verification = created.nik_verification
    assert verification is not None and verification.outcome == "passed"
    assert created.customer.nik_masked == nik[:6] + "******0003"


async def test_a_nik_born_tomorrow_in_wib_is_refused(kyc_core, kyc_org) -> None:
    external_id = unique_name("ext")
    with pytest.raises(DomainError) as raised:
        await kyc_core.customers.create(
            kyc_org, CustomerInput(external_id=external_id, nik=BORN_TOMORROW_WIB)
        )
    assert raised.value.reason == "NIK_INVALID"
    assert raised.value.metadata["check"] == "NIK_BIRTH_DATE_INVALID"
    assert BORN_TOMORROW_WIB not in str(raised.value)
