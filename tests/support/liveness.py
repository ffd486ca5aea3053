"""Helpers for liveness tests without models: a clock the test moves, and
frame colours that follow a flash challenge."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from services.liveness.flash import FrameColour, hex_to_bgr


class Clock:
    """Now, until the test moves it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


def frames_for(sequence: list[str], duration: int) -> list[FrameColour]:
    """Face colours that follow the sequence: skin lit by each colour."""
    skin = np.array([120.0, 140.0, 180.0])
    return [
        FrameColour(
            i * duration, tuple(float(v) for v in skin * (0.85 + 0.15 * hex_to_bgr(c) / 255)), True
        )
        for i, c in enumerate(sequence)
    ]
