"""Flash-challenge response: does the face's colour follow the issued sequence, in order?

The SDK flashes the challenge's colours on screen, each for
`flash_duration_ms`, while it records frames; capture-quality reports the
mean BGR colour of the inner face region per frame. The screen's light
shifts the face's chromaticity (b, g, r) / (b + g + r) towards each colour
in turn. Skin tone and ambient light are removed by subtracting the mean
chromaticity over the capture; the remaining per-slot response is compared
with the issued colours' own (mean-removed) chromaticities:

1. frames are assigned to colour slots by their time offset
   (offset // flash_duration_ms); every slot needs a frame (TOO_FEW_FRAMES).
   A frame outside the sequence is evidence of no colour and is left out of
   the response: one at or past its end (taken after the last colour went
   off) is not the last colour's frame, nor a negative one the first's
   (CheckLiveness refuses a flash frame with a negative offset as malformed,
   mapping.py; the unflashed baseline is never given here);
2. every frame must show the face (FACE_LOST_BETWEEN_FRAMES);
3. the response must be visible: mean per-slot chromaticity shift at least
   `min_response` (FLASH_RESPONSE_MISSING: a printed photo or a screen
   replayed from elsewhere does not pick up the flash);
4. each slot's response must be closest (cosine) to its own colour among the
   issued ones; `flash_score` is the share of slots that are. Any reordering
   of distinct colours misplaces at least two slots, so with four colours a
   shuffled replay scores at most 0.5 and fails the 0.75 bar
   (FLASH_ORDER_MISMATCH).

What this does not prove: a replay device that renders the right colours in
the right order in real time (an injection attack) passes this check; the
device signature, single-use challenge and PAD are the other layers.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import numpy as np

# Saturated colours whose chromaticities are far apart (hex RGB).
PALETTE = ("#FF0000", "#00FF00", "#0000FF", "#FFFF00", "#FF00FF", "#00FFFF")


@dataclass(frozen=True)
class FrameColour:
    offset_ms: int
    face_bgr: tuple[float, float, float]
    face_found: bool


@dataclass(frozen=True)
class FlashResult:
    score: float
    # (code, message) of what failed; empty when the response follows the sequence.
    reasons: list[tuple[str, str]]

    @property
    def passed(self) -> bool:
        return not self.reasons


def random_sequence(length: int, palette: tuple[str, ...] = PALETTE) -> list[str]:
    """`length` distinct colours in random order (a CSPRNG: the order is the secret)."""
    return secrets.SystemRandom().sample(list(palette), length)


def hex_to_bgr(colour: str) -> np.ndarray:
    value = colour.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return np.array([b, g, r], dtype=np.float64)


def _chromaticity(bgr: np.ndarray) -> np.ndarray:
    total = bgr.sum(axis=-1, keepdims=True)
    return bgr / np.maximum(total, 1e-6)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / denominator) if denominator > 0 else 0.0


def verify(
    sequence: list[str],
    flash_duration_ms: int,
    frames: list[FrameColour],
    *,
    min_response: float = 0.004,
    min_score: float = 0.75,
    subject: str = "face",
) -> FlashResult:
    """`frames` carry the colour of `subject` (the face, or a KTP card) per frame."""
    slots = len(sequence)
    if len(frames) < slots:
        return FlashResult(
            0.0, [("TOO_FEW_FRAMES", f"{len(frames)} frames for {slots} flash colours")]
        )
    lost = [i for i, f in enumerate(frames) if not f.face_found]
    if lost:
        return FlashResult(
            0.0, [("FACE_LOST_BETWEEN_FRAMES", f"no face in {len(lost)} of {len(frames)} frames")]
        )
    slot_of = [f.offset_ms // max(flash_duration_ms, 1) for f in frames]
    if len({s for s in slot_of if 0 <= s < slots}) < slots:
        outside = sum(not 0 <= s < slots for s in slot_of)
        detail = f": {outside} lie outside the flash sequence" if outside else ""
        return FlashResult(
            0.0,
            [
                (
                    "TOO_FEW_FRAMES",
                    f"some flash colours have no frame (check the frame offsets{detail})",
                )
            ],
        )
    chroma = _chromaticity(np.array([f.face_bgr for f in frames], dtype=np.float64))
    per_slot = np.array(
        [chroma[[i for i, s in enumerate(slot_of) if s == k]].mean(axis=0) for k in range(slots)]
    )
    response = per_slot - per_slot.mean(axis=0)
    issued = _chromaticity(np.array([hex_to_bgr(c) for c in sequence]))
    expected = issued - issued.mean(axis=0)
    amplitude = float(np.linalg.norm(response, axis=1).mean())
    if amplitude < min_response:
        return FlashResult(
            0.0,
            [
                (
                    # A card's own code: the person is told to show the
                    # original card, not a screen.
                    "CARD_FLASH_RESPONSE_MISSING"
                    if subject == "card"
                    else "FLASH_RESPONSE_MISSING",
                    f"the {subject}'s colour barely changed ({amplitude:.4f} < {min_response:g})",
                )
            ],
        )
    matched = 0
    for k in range(slots):
        similarities = [_cosine(response[k], expected[j]) for j in range(slots)]
        matched += int(int(np.argmax(similarities)) == k)
    score = matched / slots
    if score < min_score:
        return FlashResult(
            score,
            [
                (
                    "FLASH_ORDER_MISMATCH",
                    f"{matched} of {slots} flash colours seen in the issued order",
                )
            ],
        )
    return FlashResult(score, [])
