"""Safe image decoding: refuse bad input before the decoder allocates anything.

`decode_image` sniffs the real format from the magic bytes (the client's media
type is not trusted), reads the dimensions from the header without decoding,
refuses images whose header claims more pixels than allowed (a 20000 x 20000
PNG is a few hundred bytes and would need 1.2 GB decoded), checks the stream
is complete (a truncated JPEG decodes "successfully" with a grey bottom in
libjpeg) and only then decodes with OpenCV.

Errors are `InvalidArgument` with IMAGE_EMPTY, IMAGE_UNDECODABLE,
IMAGE_TOO_LARGE or IMAGE_TOO_SMALL; messages never contain image bytes.
The lead engineer may move this module to a neutral shared place.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np

from identity_runtime.errors import InvalidArgument

# JPEG start-of-frame markers carry the dimensions; C4 (DHT), C8 (JPG) and
# CC (DAC) share the range but are not frames.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_STANDALONE_MARKERS = frozenset(range(0xD0, 0xD8)) | {0x01, 0xD8}


@dataclass(frozen=True)
class ImageHeader:
    format: str  # "jpeg", "png" or "webp"
    width: int
    height: int


def _undecodable(problem: str) -> InvalidArgument:
    return InvalidArgument(f"image is not a decodable JPEG/PNG/WebP: {problem}", "IMAGE_UNDECODABLE")


def _jpeg_header(data: bytes) -> ImageHeader:
    pos = 2
    size = len(data)
    while pos < size:
        # Markers may be preceded by fill bytes (0xFF).
        if data[pos] != 0xFF:
            raise _undecodable("corrupt JPEG marker stream")
        while pos < size and data[pos] == 0xFF:
            pos += 1
        if pos >= size:
            break
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE_MARKERS:
            continue
        if marker == 0xD9 or marker == 0xDA:
            # End of image or start of scan before any frame header.
            raise _undecodable("JPEG has no frame header")
        if pos + 2 > size:
            break
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2:
            raise _undecodable("corrupt JPEG segment length")
        if marker in _SOF_MARKERS:
            if pos + 7 > size:
                break
            height, width = struct.unpack(">HH", data[pos + 3 : pos + 7])
            return ImageHeader("jpeg", width, height)
        pos += length
    raise _undecodable("truncated JPEG header")


def _jpeg_complete(data: bytes) -> bool:
    # A complete stream has an end-of-image marker after its first scan;
    # bytes after EOI (camera trailers) are allowed.
    scan = data.find(b"\xff\xda")
    return scan >= 0 and data.find(b"\xff\xd9", scan) >= 0


def _png_header(data: bytes) -> ImageHeader:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise _undecodable("truncated PNG header")
    width, height = struct.unpack(">II", data[16:24])
    return ImageHeader("png", width, height)


def _png_complete(data: bytes) -> bool:
    return data.rfind(b"IEND") >= 0


def _webp_header(data: bytes) -> ImageHeader:
    if len(data) < 30:
        raise _undecodable("truncated WebP header")
    chunk = data[12:16]
    if chunk == b"VP8 ":
        # Key frame: 3-byte frame tag, start code 9d 01 2a, then 14-bit sizes.
        if data[23:26] != b"\x9d\x01\x2a":
            raise _undecodable("corrupt WebP VP8 header")
        width, height = struct.unpack("<HH", data[26:30])
        return ImageHeader("webp", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            raise _undecodable("corrupt WebP VP8L header")
        bits = int.from_bytes(data[21:25], "little")
        return ImageHeader("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return ImageHeader("webp", width, height)
    raise _undecodable("unknown WebP chunk")


def _webp_complete(data: bytes) -> bool:
    (riff_size,) = struct.unpack("<I", data[4:8])
    return len(data) >= riff_size + 8


def read_header(data: bytes) -> ImageHeader:
    """Format and dimensions from the header alone; raises InvalidArgument."""
    if not data:
        raise InvalidArgument("image is empty", "IMAGE_EMPTY")
    if data[:3] == b"\xff\xd8\xff":
        header = _jpeg_header(data)
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        header = _png_header(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        header = _webp_header(data)
    else:
        raise _undecodable("unknown format (JPEG, PNG or WebP expected)")
    if header.width <= 0 or header.height <= 0:
        raise _undecodable("image header declares no pixels")
    return header


def decode_image(data: bytes, *, max_pixels: int, min_side: int = 1) -> np.ndarray:
    """Decode `data` to a BGR uint8 array after checking it is safe to.

    Raises InvalidArgument: IMAGE_EMPTY (zero bytes), IMAGE_UNDECODABLE (not
    JPEG/PNG/WebP, corrupt or truncated), IMAGE_TOO_LARGE (header declares
    more than `max_pixels`, refused before decoding), IMAGE_TOO_SMALL
    (shorter side below `min_side`).
    """
    header = read_header(data)
    pixels = header.width * header.height
    if pixels > max_pixels:
        raise InvalidArgument(
            f"image declares {header.width} x {header.height} pixels, more than the {max_pixels} allowed",
            "IMAGE_TOO_LARGE",
            {"max_pixels": max_pixels},
        )
    if min(header.width, header.height) < min_side:
        raise InvalidArgument(
            f"image is {header.width} x {header.height}; its shorter side must be at least {min_side} px",
            "IMAGE_TOO_SMALL",
            {"min_side": min_side},
        )
    complete = {"jpeg": _jpeg_complete, "png": _png_complete, "webp": _webp_complete}[header.format]
    if not complete(data):
        raise _undecodable(f"truncated {header.format.upper()} data")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise _undecodable(f"{header.format.upper()} data is corrupt")
    # EXIF orientation may swap the sides; the pixel count is unchanged.
    if image.shape[0] * image.shape[1] != pixels:
        raise _undecodable("decoded size differs from the header")
    return image
