"""What a periodic pattern on a KTP card was printed or shown on: a card
that reflects the flash is paper (a halftone print), one that barely answers
is a screen; without flash frames the medium is unknown."""

from __future__ import annotations

import pytest

from identity_ktp.analysis import (
    HALFTONE_PRINT_SUSPECTED,
    SCREEN_RECAPTURE_SUSPECTED,
    _recaptured_medium,
)
from identity_ktp.flash import MIN_RESPONSE, flash_response, reflects_flash

pytestmark = pytest.mark.unit

GREY = (120.0, 120.0, 120.0)


def lit(b: float, g: float, r: float, share: float) -> tuple[float, float, float]:
    """A grey card lit `share` by a flash of colour (b, g, r) in [0, 1]."""
    return tuple(v * ((1 - share) + share * c) for v, c in zip(GREY, (b, g, r), strict=True))


COLOURS = [(0, 0, 1), (0, 1, 0), (1, 0, 0), (0, 1, 1)]


def frames(share: float) -> list[tuple[tuple[float, float, float], tuple[float, float, float]]]:
    return [(lit(*c, share), GREY) for c in COLOURS]


def test_a_card_lit_by_the_flash_moves_and_one_that_is_not_does_not() -> None:
    assert flash_response([card for card, _ in frames(0.15)]) > 4 * MIN_RESPONSE
    assert flash_response([card for card, _ in frames(0.0)]) == 0.0
    assert flash_response([GREY]) == 0.0
    assert reflects_flash([card for card, _ in frames(0.15)])
    assert not reflects_flash([card for card, _ in frames(0.005)])


@pytest.mark.parametrize(
    ("flash_colours", "code", "said"),
    [
        (frames(0.15), HALFTONE_PRINT_SUSPECTED, "halftone print"),
        (frames(0.002), SCREEN_RECAPTURE_SUSPECTED, "a screen"),
        ([], SCREEN_RECAPTURE_SUSPECTED, "medium unknown"),
    ],
)
def test_the_medium_is_named_by_the_cards_answer_to_the_flash(flash_colours, code, said) -> None:
    named, detail = _recaptured_medium(flash_colours)
    assert named == code
    assert said in detail
