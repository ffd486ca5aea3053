"""What the KTP flash check costs capture-quality per capture: decoding the
flash frames (four, 1280 x 900, as the SDK sends them), keeping 320 px
thumbnails and sampling the card's colour on each. Median and max of 15 runs.

    .venv/bin/python tools/bench/ktp_flash_cost.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from identity_inference.images import ImageLimits, decode  # noqa: E402
from identity_ktp.card import find_card  # noqa: E402
from identity_ktp.flash import card_colour, thumbnail  # noqa: E402
from tests.support.biometrics import flash_frames  # noqa: E402
from tests.support.ktp import ktp_bytes  # noqa: E402


def main() -> None:
    image = cv2.imdecode(np.frombuffer(ktp_bytes("ktp_captured.jpg"), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    frames = flash_frames(image, ["#FF0000", "#00FF00", "#0000FF", "#FFFF00"])
    location = find_card(image)
    assert location is not None
    limits = ImageLimits(max_pixels=40_000_000, min_side=100)
    samples = []
    for _ in range(15):
        start = time.perf_counter()
        kept = [thumbnail(decode(frame, limits, "flash_frames")) for frame in frames]
        for frame in kept:
            card_colour(frame, location.corners, image.shape[:2])
        samples.append(1000 * (time.perf_counter() - start))
    print(
        f"{len(frames)} flash frames of {image.shape[1]} x {image.shape[0]}: "
        f"median {statistics.median(samples):.1f} ms, max {max(samples):.1f} ms"
    )


if __name__ == "__main__":
    main()
