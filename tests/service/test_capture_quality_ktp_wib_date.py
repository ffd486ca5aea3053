"""CheckKtp judges the card's NIK birth date against the WIB (Asia/Jakarta)
date of the core's clock: the real OCR reads the dev KTP (a woman born on
1 July 1995) at instants either side of 17:00 UTC on 30 June 1995, when the
Jakarta date turns 1 July."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from identity_runtime.settings import load_settings
from services.capture_quality.bootstrap import (
    CaptureQualityCore,
    CaptureQualityOverrides,
    build,
)
from services.capture_quality.ktp import KtpCheckRequest
from services.capture_quality.settings import CaptureQualitySettings
from tests.support.ktp import ktp_bytes

pytestmark = [pytest.mark.models, pytest.mark.slow]

# 00:30 on 1 July 1995 in Jakarta (the UTC date is still 30 June).
AFTER_WIB_MIDNIGHT = datetime(1995, 6, 30, 17, 30, tzinfo=UTC)
# 23:30 on 30 June 1995 in Jakarta.
BEFORE_WIB_MIDNIGHT = datetime(1995, 6, 30, 16, 30, tzinfo=UTC)


class MovableClock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def clock() -> MovableClock:
    return MovableClock(AFTER_WIB_MIDNIGHT)


@pytest.fixture(scope="module")
async def core(clock: MovableClock) -> AsyncIterator[CaptureQualityCore]:
    settings = load_settings(
        CaptureQualitySettings, "CAPTURE_QUALITY", {"CAPTURE_QUALITY_KTP_WORKERS": "1"}
    )
    built = await build(settings, overrides=CaptureQualityOverrides(clock=clock))
    yield built
    await built.close()


async def test_a_card_born_on_todays_wib_date_has_a_valid_nik_after_17_utc(
    core: CaptureQualityCore, clock: MovableClock
) -> None:
    clock.now = AFTER_WIB_MIDNIGHT
    report = await core.ktp.check(KtpCheckRequest(image=ktp_bytes("ktp_flat.png")))
    assert report.nik is not None
    assert report.nik.valid and report.nik.reasons == ()
    assert report.nik.birth_date == AFTER_WIB_MIDNIGHT.date().replace(day=1, month=7)


async def test_a_card_born_tomorrow_in_wib_has_an_invalid_birth_date(
    core: CaptureQualityCore, clock: MovableClock
) -> None:
    clock.now = BEFORE_WIB_MIDNIGHT
    report = await core.ktp.check(KtpCheckRequest(image=ktp_bytes("ktp_flat.png")))
    assert report.nik is not None
    assert not report.nik.valid and report.nik.reasons == ("NIK_BIRTH_DATE_INVALID",)
