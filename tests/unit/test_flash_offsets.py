"""Which colour a frame answered, by its offset: only a frame inside the flash
sequence is evidence of a colour. One taken after the last colour went off
is not the last colour's frame, nor one with a negative offset the first's
(CheckLiveness refuses such a flash frame before this check runs)."""

from __future__ import annotations

import dataclasses

import pytest

from services.liveness import flash
from tests.support.liveness import frames_for

pytestmark = pytest.mark.unit

SEQUENCE = ["#FF0000", "#00FF00", "#0000FF", "#FFFF00"]
DURATION_MS = 400
END_MS = len(SEQUENCE) * DURATION_MS


def at(frame: flash.FrameColour, offset_ms: int) -> flash.FrameColour:
    return dataclasses.replace(frame, offset_ms=offset_ms)


def codes(result: flash.FlashResult) -> list[str]:
    return [code for code, _ in result.reasons]


def test_frames_inside_their_colours_slots_pass() -> None:
    genuine = frames_for(SEQUENCE, DURATION_MS)
    # The last millisecond of the sequence still shows the last colour.
    last = [*genuine[:-1], at(genuine[-1], END_MS - 1)]
    for frames in (genuine, last):
        result = flash.verify(SEQUENCE, DURATION_MS, frames)
        assert result.passed and result.score == 1.0, result.reasons


def test_frames_after_the_flash_are_left_out_of_the_colour_response() -> None:
    """Frames taken after the sequence ended (here: lit by the first colour,
    as a replay that keeps going would be) would outweigh the last colour's
    frame if they counted as its own."""
    genuine = frames_for(SEQUENCE, DURATION_MS)
    after = [at(genuine[0], END_MS + k * 100) for k in range(3)]
    result = flash.verify(SEQUENCE, DURATION_MS, genuine + after)
    assert result.passed and result.score == 1.0, result.reasons


def test_a_colour_whose_only_frame_came_after_the_flash_has_no_frame() -> None:
    genuine = frames_for(SEQUENCE, DURATION_MS)
    late = [*genuine[:-1], at(genuine[-1], END_MS)]
    result = flash.verify(SEQUENCE, DURATION_MS, late)
    assert codes(result) == ["TOO_FEW_FRAMES"] and result.score == 0.0
    assert "1 lie outside the flash sequence" in result.reasons[0][1]


def test_a_frame_before_the_flash_is_not_the_first_colours_frame() -> None:
    genuine = frames_for(SEQUENCE, DURATION_MS)
    early = [at(genuine[0], -1), *genuine[1:]]
    result = flash.verify(SEQUENCE, DURATION_MS, early)
    assert codes(result) == ["TOO_FEW_FRAMES"]
