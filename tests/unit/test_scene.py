"""The flash frames' scene check and region of interest (detect once, issue 15):
a lit copy of the frame is the same scene; a face or a patch stepping in
outside the region, a moved camera or another frame size is a change."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from identity_inference import scene
from identity_inference.detector import roi_box

WIDTH, HEIGHT = 1200, 900
REGION = (100, 100, 600, 700)


def frame() -> np.ndarray:
    rng = np.random.default_rng(5)
    noise = rng.normal(0, 1, (HEIGHT // 30, WIDTH // 30, 3)).astype(np.float32)
    smooth = cv2.resize(noise, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    return np.clip(128 + 35 * smooth, 0, 255).astype(np.uint8)


def lit(image: np.ndarray, bgr_gain: tuple[float, float, float]) -> np.ndarray:
    return np.clip(image.astype(np.float32) * np.array(bgr_gain), 0, 255).astype(np.uint8)


def changed(before: np.ndarray, after: np.ndarray, region=REGION) -> bool:
    return scene.changed_outside(
        scene.thumbnail(before), scene.thumbnail(after), region, WIDTH, HEIGHT
    )


@pytest.mark.parametrize(
    "gain",
    [(1.0, 1.0, 1.0), (0.85, 0.85, 1.0), (1.0, 0.85, 0.85), (0.85, 1.0, 1.0), (0.7, 0.7, 0.7)],
)
def test_a_flash_lit_copy_is_the_same_scene(gain) -> None:
    assert not changed(frame(), lit(frame(), gain))


def test_a_change_inside_the_region_is_not_looked_at() -> None:
    after = frame()
    after[200:600, 200:500] = 20
    assert not changed(frame(), after)


@pytest.mark.parametrize("size", [80, 160])
def test_a_patch_stepping_in_outside_the_region_is_a_change(size: int) -> None:
    after = frame()
    after[300 : 300 + size, 900 : 900 + size] = 240
    assert changed(frame(), after)


def test_a_moved_camera_is_a_change() -> None:
    after = np.roll(frame(), 60, axis=1)
    assert changed(frame(), after)


def test_another_frame_size_is_a_change() -> None:
    before = scene.thumbnail(frame())
    after = scene.thumbnail(cv2.resize(frame(), (WIDTH, HEIGHT // 2)))
    assert scene.changed_outside(before, after, REGION, WIDTH, HEIGHT)


def test_nothing_outside_a_whole_frame_region() -> None:
    after = frame()
    after[:, :] = 0
    assert not changed(frame(), after, (0, 0, WIDTH, HEIGHT))


def test_the_region_is_centred_on_the_box_and_clipped_to_the_frame() -> None:
    assert roi_box((400, 300, 100, 120), WIDTH, HEIGHT) == (300, 210, 600, 510)
    assert roi_box((0, 0, 200, 200), WIDTH, HEIGHT) == (0, 0, 350, 350)
    assert roi_box((1100, 800, 100, 100), WIDTH, HEIGHT) == (1025, 725, 1200, 900)


def test_a_region_covering_the_frame_watches_nothing_outside() -> None:
    # Within a thumbnail pixel of every edge: no cell has enough outside to judge.
    nearly_whole = (5, 5, WIDTH - 5, HEIGHT - 5)
    assert not scene.watches_outside((0, 0, WIDTH, HEIGHT), WIDTH, HEIGHT)
    assert not scene.watches_outside(nearly_whole, WIDTH, HEIGHT)
    # ... and then nothing the frames show is a change (so no thumbnail is made).
    assert not changed(frame(), np.zeros_like(frame()), nearly_whole)


def test_a_smaller_region_watches_the_outside() -> None:
    assert scene.watches_outside(REGION, WIDTH, HEIGHT)
    assert scene.watches_outside((0, 0, WIDTH - 200, HEIGHT), WIDTH, HEIGHT)
    after = frame()
    after[:, WIDTH - 150 :] = 250
    assert changed(frame(), after, (0, 0, WIDTH - 200, HEIGHT))
