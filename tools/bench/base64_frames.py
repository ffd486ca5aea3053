#!/usr/bin/env python3
"""CPU of the gateway's base64 decoding of capture frames (`decode_base64`),
per frame, for the test photos as the SDK sends them (standard alphabet,
padded) and as URL-safe text without padding.

    .venv/bin/python tools/bench/base64_frames.py [--repeats 7]

Best of `--repeats` rounds of process CPU time. Copy the script into another
checkout and run it with that checkout's interpreter to compare.
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gateway.transcoding import decode_base64  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    frames = [path.read_bytes() for path in sorted((ROOT / "tests/data/faces").glob("*.jpg"))]
    texts = {
        "standard, padded": [base64.b64encode(frame).decode() for frame in frames],
        "URL-safe, unpadded": [
            base64.urlsafe_b64encode(frame).decode().rstrip("=") for frame in frames
        ],
    }
    average_kb = sum(map(len, frames)) / len(frames) / 1024
    print(f"{len(frames)} frames, {average_kb:.0f} KB on average")
    for name, encoded in texts.items():
        best = float("inf")
        for _ in range(args.repeats):
            started = time.process_time()
            for _ in range(20):
                for text in encoded:
                    decode_base64(text, "frame")
            best = min(best, time.process_time() - started)
        print(f"{name}: {best / (20 * len(encoded)) * 1e6:.0f} us of CPU a frame")


if __name__ == "__main__":
    main()
