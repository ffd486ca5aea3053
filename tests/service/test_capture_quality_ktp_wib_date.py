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


@pytest.mark.parametrize(
    ("now", "reasons"),
    [
        # Born on 1 July 1995 and it is 1 July in Jakarta: a valid NIK.
        (AFTER_WIB_MIDNIGHT, ()),
        # Still 30 June in Jakarta: a birth date in the future.
        (BEFORE_WIB_MIDNIGHT, ("NIK_BIRTH_DATE_INVALID",)),
    ],
)
async def test_the_cards_nik_birth_date_is_judged_by_the_wib_date(
    core: CaptureQualityCore, clock: MovableClock, now: datetime, reasons: tuple[str, ...]
) -> None:
    clock.now = now
    report = await core.ktp.check(KtpCheckRequest(image=ktp_bytes("ktp_flat.png")))
    assert report.nik is not None
    assert (report.nik.valid, report.nik.reasons) == (not reasons, reasons)
