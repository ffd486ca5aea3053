"""The KTP card's answer to the flash challenge, measured on the repository's
card photo: a physical card (light multiplies its reflectance) follows the
issued colours; the same card shown on a screen (emitted light plus a few per
cent of reflected flash) barely moves; the right colours in the wrong order
(a replay of another challenge) do not match."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from identity_ktp.card import find_card
from identity_ktp.flash import MIN_RESPONSE, card_colour
from services.liveness import flash
from tests.support.biometrics import flash_frames, screen_flash_frames
from tests.support.ktp import ktp_path

pytestmark = pytest.mark.unit

SEQUENCE = ["#FF0000", "#00FF00", "#0000FF", "#FFFF00"]
DURATION_MS = 400


@pytest.fixture(scope="module")
def card() -> tuple[np.ndarray, tuple[tuple[float, float], ...]]:
    image = cv2.imread(str(ktp_path("ktp_captured.jpg")))
    location = find_card(image)
    assert location is not None
    return image, location.corners


def judged(frames: list[bytes], corners, shape, sequence=SEQUENCE) -> flash.FlashResult:
    colours = []
    for index, data in enumerate(frames):
        frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        inside, _ = card_colour(frame, corners, shape)
        colours.append(flash.FrameColour(index * DURATION_MS, inside, True))
    return flash.verify(sequence, DURATION_MS, colours, min_response=MIN_RESPONSE, subject="card")


def test_a_physical_card_answers_the_flash_in_the_issued_order(card) -> None:
    image, corners = card
    result = judged(flash_frames(image, SEQUENCE), corners, image.shape[:2])
    assert result.passed, result.reasons
    assert result.score == 1.0


def test_a_card_on_a_screen_barely_answers_the_flash(card) -> None:
    image, corners = card
    result = judged(screen_flash_frames(image, SEQUENCE), corners, image.shape[:2])
    assert [code for code, _ in result.reasons] == ["CARD_FLASH_RESPONSE_MISSING"]
    assert "card's colour" in result.reasons[0][1]


def test_a_replay_of_another_challenges_colours_does_not_match(card) -> None:
    image, corners = card
    replayed = flash_frames(image, ["#0000FF", "#FFFF00", "#FF0000", "#00FF00"])
    result = judged(replayed, corners, image.shape[:2])
    assert [code for code, _ in result.reasons] == ["FLASH_ORDER_MISMATCH"]


def test_the_outline_is_scaled_to_a_frame_of_another_size(card) -> None:
    image, corners = card
    half = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2))
    full = card_colour(image, corners, image.shape[:2])[0]
    scaled = card_colour(half, corners, image.shape[:2])[0]
    assert np.allclose(full, scaled, atol=3.0)


def test_without_a_card_the_centre_of_the_frame_is_sampled() -> None:
    frame = np.zeros((400, 600, 3), np.uint8)
    frame[100:300, 150:450] = (10, 200, 30)
    inside, outside = card_colour(frame, (), frame.shape[:2])
    assert inside == pytest.approx((10.0, 200.0, 30.0))
    # Outside: mostly the black surround (the guide's margin is part of it).
    assert outside[1] < 0.25 * inside[1]
