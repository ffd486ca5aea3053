"""Limits of a capture bundle, the same for every service that reads one."""

from collections.abc import Iterable

# Frames in one capture bundle (a flash sequence of at most six colours, with
# unflashed baselines): kyc-tier refuses a bundle with more, capture-quality
# and liveness a request with more.
MAX_FRAMES = 16

# A device id (the SDK installation's): kyc-tier refuses a longer one, and
# liveness's devices table holds no more.
MAX_DEVICE_ID_LENGTH = 128

# A frame not marked baseline is a flash frame: its offset counts from the
# first colour, so it is 0 or more; only the baseline is taken before the
# sequence. kyc-tier refuses a bundle, liveness a request, that breaks it.
NEGATIVE_FLASH_OFFSET = (
    "a flash frame's offset must be 0 or more (only a baseline frame precedes the flash sequence)"
)


def negative_flash_offset(frames: Iterable[tuple[int, bool]]) -> int | None:
    """The index of the first flash frame with a negative offset, among
    (offset_ms, baseline) pairs; None when there is none."""
    return next(
        (
            index
            for index, (offset_ms, baseline) in enumerate(frames)
            if offset_ms < 0 and not baseline
        ),
        None,
    )
