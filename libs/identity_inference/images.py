"""Decoding untrusted images once, with hard limits checked before decoding.

The format is sniffed from the magic bytes (the client's media type is not
trusted), the dimensions are read from the header, and an image that claims
more pixels than allowed is refused before a single pixel is allocated: a
40-byte PNG header can claim 20000 x 20000 and make a decoder ask for 1.2 GB.
Truncated files are refused too (a JPEG without its end marker after the
scan, a PNG without IEND, a WebP shorter than its RIFF size), because
decoders happily return half-grey pictures for them.

`decode(..., max_pixels_out=N)` keeps the decoded size within N pixels:
a JPEG is scaled down inside the decoder (libjpeg's 1/2, 1/4, 1/8 DCT
scaling, so the full-size picture is never allocated), a PNG or WebP is
decoded at full size and resized at once, holding `gate` meanwhile so that
only a bounded number of full-size pictures exist in the process at any time.

Errors are INVALID_ARGUMENT with IMAGE_EMPTY, IMAGE_UNDECODABLE,
IMAGE_TOO_LARGE, IMAGE_TOO_SMALL or RAW_IMAGE_INVALID; messages name the
field and the limit, never the content.
"""

from __future__ import annotations

import contextlib
import math
import struct
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from identity_runtime.errors import InvalidArgument

JPEG, PNG, WEBP = "jpeg", "png", "webp"


@dataclass(frozen=True)
class ImageLimits:
    # Refused before decoding when width * height exceeds it.
    max_pixels: int = 40_000_000
    max_side: int = 12_000
    min_side: int = 32


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header claims (format and pixel size), read before
    anything is decoded."""

    format: str
    width: int
    height: int


def _undecodable(field: str, problem: str) -> InvalidArgument:
    return InvalidArgument(f"{field}: {problem}", "IMAGE_UNDECODABLE", {"field": field})


def _jpeg_header(data: bytes, field: str) -> tuple[ImageHeader, int]:
    """Dimensions from the SOF segment, and the offset of the first scan."""
    offset, size, dims = 2, len(data), None
    while offset < size:
        if data[offset] != 0xFF:
            raise _undecodable(field, "corrupt JPEG marker structure")
        while offset < size and data[offset] == 0xFF:
            offset += 1
        if offset >= size:
            break
        marker = data[offset]
        offset += 1
        if marker in (0x01, *range(0xD0, 0xD8)):
            continue
        if marker == 0xD9:
            break
        if offset + 2 > size:
            break
        (length,) = struct.unpack(">H", data[offset : offset + 2])
        if length < 2 or offset + length > size:
            break
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if length < 7:
                raise _undecodable(field, "corrupt JPEG frame header")
            height, width = struct.unpack(">HH", data[offset + 3 : offset + 7])
            dims = (width, height)
        if marker == 0xDA:
            if dims is None:
                raise _undecodable(field, "JPEG scan before frame header")
            return ImageHeader(JPEG, dims[0], dims[1]), offset + length
        offset += length
    raise _undecodable(field, "truncated JPEG (no image scan)")


def _png_header(data: bytes, field: str) -> ImageHeader:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise _undecodable(field, "truncated PNG header")
    width, height = struct.unpack(">II", data[16:24])
    return ImageHeader(PNG, width, height)


def _webp_header(data: bytes, field: str) -> ImageHeader:
    if len(data) < 30:
        raise _undecodable(field, "truncated WebP header")
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
    elif chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        width, height = 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    elif chunk == b"VP8 ":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
    else:
        raise _undecodable(field, "unknown WebP chunk")
    return ImageHeader(WEBP, width, height)


def read_header(data: bytes, field: str = "image") -> ImageHeader:
    """Format and declared dimensions, from the first bytes only."""
    if not data:
        raise InvalidArgument(
            f"{field}: the image is empty (0 bytes)", "IMAGE_EMPTY", {"field": field}
        )
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg_header(data, field)[0]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_header(data, field)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_header(data, field)
    raise _undecodable(field, "not a JPEG, PNG or WebP image")


def _check_complete(data: bytes, header: ImageHeader, field: str) -> None:
    if header.format == JPEG:
        _, scan = _jpeg_header(data, field)
        if data.rfind(b"\xff\xd9") < scan:
            raise _undecodable(field, "truncated JPEG (no end-of-image marker)")
    elif header.format == PNG:
        if data.rfind(b"IEND") < 0:
            raise _undecodable(field, "truncated PNG (no IEND chunk)")
    elif header.format == WEBP:
        (riff_size,) = struct.unpack("<I", data[4:8])
        if riff_size + 8 > len(data):
            raise _undecodable(field, "truncated WebP (shorter than its RIFF size)")


def check_limits(header: ImageHeader, limits: ImageLimits, field: str) -> None:
    if header.width <= 0 or header.height <= 0:
        raise _undecodable(field, "the header declares an empty image")
    if (
        header.width * header.height > limits.max_pixels
        or max(header.width, header.height) > limits.max_side
    ):
        raise InvalidArgument(
            f"{field}: the header declares {header.width}x{header.height} pixels, more than the "
            f"{limits.max_pixels} pixels / {limits.max_side} px side allowed",
            "IMAGE_TOO_LARGE",
            {"field": field, "max_pixels": limits.max_pixels, "max_side": limits.max_side},
        )
    if min(header.width, header.height) < limits.min_side:
        raise InvalidArgument(
            f"{field}: {header.width}x{header.height} is smaller than "
            f"{limits.min_side} px on a side",
            "IMAGE_TOO_SMALL",
            {"field": field, "min_side": limits.min_side},
        )


_REDUCED_JPEG = {
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def decoded_size(width: int, height: int, max_pixels_out: int | None) -> tuple[int, int]:
    """(width, height) of a picture of width x height scaled to at most `max_pixels_out`."""
    if not max_pixels_out or width * height <= max_pixels_out:
        return width, height
    scale = math.sqrt(max_pixels_out / (width * height))
    return max(1, int(width * scale)), max(1, int(height * scale))


def decode(
    data: bytes,
    limits: ImageLimits = ImageLimits(),
    field: str = "image",
    max_pixels_out: int | None = None,
    gate: threading.Semaphore | None = None,
) -> np.ndarray:
    """BGR8 pixels of an encoded image, or a precise INVALID_ARGUMENT; at most
    `max_pixels_out` pixels when given (downscaled at decode time)."""
    header = read_header(data, field)
    check_limits(header, limits, field)
    _check_complete(data, header, field)
    buffer = np.frombuffer(data, dtype=np.uint8)
    source_pixels = header.width * header.height
    if not max_pixels_out or source_pixels <= max_pixels_out:
        return _checked(cv2.imdecode(buffer, cv2.IMREAD_COLOR), header, 1, field)
    # The largest DCT reduction that still decodes at least the target size.
    factor = 1
    if header.format == JPEG:
        factor = max(f for f in (1, 2, 4, 8) if source_pixels / (f * f) >= max_pixels_out)
    flag = _REDUCED_JPEG.get(factor, cv2.IMREAD_COLOR)
    # A full-size decode holds the whole picture until it is resized.
    with gate if gate is not None and factor == 1 else contextlib.nullcontext():
        pixels = _checked(cv2.imdecode(buffer, flag), header, factor, field)
        height, width = pixels.shape[:2]
        if height * width > max_pixels_out:
            size = decoded_size(width, height, max_pixels_out)
            pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    return pixels


def _checked(pixels: np.ndarray | None, header: ImageHeader, factor: int, field: str) -> np.ndarray:
    if pixels is None or pixels.ndim != 3:
        raise _undecodable(field, f"the {header.format.upper()} data cannot be decoded")
    # EXIF orientation may swap the axes; anything else means the header lied.
    expected = sorted((-(-header.height // factor), -(-header.width // factor)))
    if sorted(pixels.shape[:2]) != expected:
        raise _undecodable(field, "decoded size differs from the header")
    return pixels


def raw_bgr(
    width: int, height: int, pixels: bytes, channels: int = 3, field: str = "image"
) -> np.ndarray:
    """A raw pixel buffer as an array, checked against its declared shape."""
    if width <= 0 or height <= 0 or width * height > ImageLimits().max_pixels:
        raise InvalidArgument(
            f"{field}: width and height must be positive and bounded",
            "RAW_IMAGE_INVALID",
            {"field": field},
        )
    expected = width * height * channels
    if len(pixels) != expected:
        raise InvalidArgument(
            f"{field}: {len(pixels)} bytes, expected {expected} for {width}x{height}x{channels}",
            "RAW_IMAGE_INVALID",
            {"field": field},
        )
    return np.frombuffer(pixels, dtype=np.uint8).reshape(height, width, channels)
