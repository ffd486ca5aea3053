"""Finding and rectifying the card in synthetic scenes made from the dev KTP."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from identity_ktp.card import CARD_HEIGHT, CARD_WIDTH, find_card, rectify
from tests.support.ktp import flat_card


def scene(corners, size=(1600, 1200), background=(60, 70, 80), light: float = 1.0) -> np.ndarray:
    """The flat card warped onto a noisy uniform background at `corners`."""
    card = flat_card()
    height, width = card.shape[:2]
    matrix = cv2.getPerspectiveTransform(
        np.float32([[0, 0], [width, 0], [width, height], [0, height]]), np.float32(corners)
    )
    warped = cv2.warpPerspective(card, matrix, size)
    mask = cv2.warpPerspective(np.ones((height, width), np.uint8), matrix, size)
    table = np.full((size[1], size[0], 3), background, np.float32)
    table += np.random.default_rng(0).normal(0, 6, table.shape)
    photo = np.where(mask[..., None] > 0, warped, np.clip(table, 0, 255))
    return np.clip(photo * light, 0, 255).astype(np.uint8)


PERSPECTIVE = [[300, 200], [1350, 280], [1300, 900], [250, 1000]]


@pytest.mark.parametrize(
    ("name", "corners", "options"),
    [
        ("strong perspective", PERSPECTIVE, {}),
        ("very strong perspective", [[400, 250], [1250, 300], [1450, 950], [150, 1000]], {}),
        ("light card on a light table", PERSPECTIVE, {"background": (200, 210, 215)}),
        ("dim photo", PERSPECTIVE, {"light": 0.35}),
        ("small in the frame", [[600, 500], [1000, 510], [995, 760], [598, 752]], {}),
        ("held upright (90 degrees)", [[500, 1100], [500, 100], [1130, 100], [1130, 1100]], {}),
    ],
)
def test_the_card_outline_is_found(name: str, corners, options) -> None:
    found = find_card(scene(corners, **options))
    assert found is not None and found.method == "outline", name
    # Same corners (within 1 % of the frame), in the card's own clockwise order.
    expected = np.float32(corners)
    got = np.float32(found.corners)
    assert any(np.allclose(np.roll(got, k, axis=0), expected, atol=16) for k in range(4)), (
        name,
        got,
    )
    top = np.linalg.norm(got[1] - got[0])
    side = np.linalg.norm(got[3] - got[0])
    assert top > side  # long side first


def test_the_rectified_card_is_upright_and_id1() -> None:
    photo = scene(PERSPECTIVE)
    card = rectify(photo, find_card(photo).corners)
    assert card.shape == (CARD_HEIGHT, CARD_WIDTH, 3)
    reference = flat_card()
    difference = np.abs(
        cv2.resize(card, (reference.shape[1], reference.shape[0])).astype(int)
        - reference.astype(int)
    )
    assert np.median(difference) < 12


def test_a_small_card_is_found_and_measured_small() -> None:
    found = find_card(scene([[600, 500], [1000, 510], [995, 760], [598, 752]]))
    assert found is not None and 380 < found.width_px < 420


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_noise_has_no_card(seed: int) -> None:
    for size in ((600, 600), (900, 1280)):
        noise = np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)
        assert find_card(noise) is None


def test_a_tight_crop_is_the_frame_itself() -> None:
    found = find_card(flat_card())
    assert found is not None and found.method == "frame"
