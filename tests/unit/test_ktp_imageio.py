"""Safe decoding of KTP photos (identity_inference.images, shared with the face
path) refuses empty, malformed, truncated and oversize images before decoding."""

from __future__ import annotations

import struct
import tracemalloc

import cv2
import numpy as np
import pytest

from identity_inference.images import ImageLimits, decode, read_header
from identity_runtime.errors import InvalidArgument
from tests.support.images import png_claiming

MAX_PIXELS = 40_000_000


def decode_image(data: bytes, *, max_pixels: int, min_side: int = 1) -> np.ndarray:
    return decode(data, ImageLimits(max_pixels=max_pixels, min_side=min_side), "card_image")


def encoded(ext: str, width: int = 64, height: int = 48, **params: int) -> bytes:
    image = np.full((height, width, 3), 127, np.uint8)
    cv2.circle(image, (width // 2, height // 2), min(width, height) // 3, (10, 200, 30), -1)
    flags: list[int] = []
    for key, value in params.items():
        flags += [getattr(cv2, key), value]
    ok, data = cv2.imencode(ext, image, flags)
    assert ok
    return data.tobytes()


def jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(encoded(".jpg"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def reason_of(data: bytes, **kwargs) -> str:
    with pytest.raises(InvalidArgument) as caught:
        decode_image(data, max_pixels=kwargs.pop("max_pixels", MAX_PIXELS), **kwargs)
    return caught.value.reason


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_good_images_decode_to_bgr(ext: str) -> None:
    image = decode_image(encoded(ext, 64, 48), max_pixels=MAX_PIXELS)
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8


@pytest.mark.parametrize(
    ("ext", "params"),
    [(".webp", {"IMWRITE_WEBP_QUALITY": 101}), (".webp", {"IMWRITE_WEBP_QUALITY": 80})],
)
def test_webp_lossless_and_lossy_headers_are_read(ext: str, params: dict[str, int]) -> None:
    header = read_header(encoded(ext, 70, 30, **params))
    assert (header.format, header.width, header.height) == ("webp", 70, 30)


def test_zero_bytes_are_image_empty() -> None:
    assert reason_of(b"") == "IMAGE_EMPTY"


@pytest.mark.parametrize(
    "data",
    [
        b"hello world, not an image",
        b"\xff\xd8\xff",
        b"\x89PNG\r\n\x1a\n\x00\x00",
        b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        b"GIF89a" + b"\x00" * 40,
    ],
)
def test_malformed_bytes_are_undecodable(data: bytes) -> None:
    assert reason_of(data) == "IMAGE_UNDECODABLE"


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_truncated_images_are_undecodable(ext: str) -> None:
    data = encoded(ext, 320, 240)
    assert reason_of(data[: len(data) // 2]) == "IMAGE_UNDECODABLE"


def test_corrupt_png_body_is_undecodable() -> None:
    data = bytearray(encoded(".png", 320, 240))
    body = data.find(b"IDAT") + 8
    data[body : body + 64] = b"\x00" * 64
    assert reason_of(bytes(data)) == "IMAGE_UNDECODABLE"


@pytest.mark.parametrize("make", [png_claiming, jpeg_claiming])
def test_header_claiming_20000_by_20000_is_refused_before_decoding(make) -> None:
    data = make(20000, 20000)
    assert len(data) < 10_000
    tracemalloc.start()
    try:
        with pytest.raises(InvalidArgument) as caught:
            decode_image(data, max_pixels=MAX_PIXELS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.reason == "IMAGE_TOO_LARGE"
    assert caught.value.metadata["max_pixels"] == str(MAX_PIXELS)
    assert peak < 5_000_000


def test_too_small_images_are_refused() -> None:
    assert reason_of(encoded(".png", 64, 48), min_side=100) == "IMAGE_TOO_SMALL"


def test_trailing_bytes_after_jpeg_end_are_allowed() -> None:
    image = decode_image(encoded(".jpg") + b"camera trailer", max_pixels=MAX_PIXELS)
    assert image.shape[:2] == (48, 64)


def test_error_messages_do_not_echo_the_bytes() -> None:
    secret = b"3273024107950003" * 4
    with pytest.raises(InvalidArgument) as caught:
        decode_image(secret, max_pixels=MAX_PIXELS)
    assert "3273024107950003" not in str(caught.value)
