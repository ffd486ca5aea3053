"""Decoding untrusted bytes: only precise INVALID_ARGUMENT errors, never a crash."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from identity_inference import images
from identity_runtime.errors import InvalidArgument

REASONS = {"IMAGE_EMPTY", "IMAGE_UNDECODABLE", "IMAGE_TOO_LARGE", "IMAGE_TOO_SMALL"}


def encoded(extension: str) -> bytes:
    rng = np.random.default_rng(1)
    picture = cv2.GaussianBlur(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), (0, 0), 2)
    ok, data = cv2.imencode(extension, picture)
    assert ok
    return data.tobytes()


@pytest.mark.parametrize("extension", [".jpg", ".png", ".webp"])
def test_valid_images_decode_with_their_header_size(extension: str) -> None:
    data = encoded(extension)
    header = images.read_header(data)
    assert (header.width, header.height) == (160, 120)
    assert images.decode(data).shape == (120, 160, 3)


@pytest.mark.parametrize("extension", [".jpg", ".png", ".webp"])
def test_every_truncation_is_refused(extension: str) -> None:
    data = encoded(extension)
    for cut in range(0, len(data) - 1, max(1, len(data) // 40)):
        with pytest.raises(InvalidArgument) as caught:
            images.decode(data[:cut])
        assert caught.value.reason in REASONS


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBP"]),
    st.binary(max_size=400),
)
def test_random_bytes_after_a_magic_number_are_refused_precisely(
    prefix: bytes, tail: bytes
) -> None:
    try:
        images.decode(prefix + tail)
    except InvalidArgument as exc:
        assert exc.reason in REASONS
        assert "field" in exc.metadata


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(encoded(".jpg")) - 1), st.integers(0, 255))
def test_flipped_bytes_never_escape_as_other_errors(position: int, value: int) -> None:
    data = bytearray(encoded(".jpg"))
    data[position] = value
    try:
        images.decode(bytes(data))
    except InvalidArgument as exc:
        assert exc.reason in REASONS


def test_raw_buffers_must_match_their_shape() -> None:
    assert images.raw_bgr(2, 2, bytes(12)).shape == (2, 2, 3)
    with pytest.raises(InvalidArgument) as caught:
        images.raw_bgr(2, 2, bytes(11))
    assert caught.value.reason == "RAW_IMAGE_INVALID"
