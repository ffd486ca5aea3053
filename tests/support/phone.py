"""The customer's phone for tests of other clients (the stubs package, the
generated clients): it answers a challenge with a capture bundle signed with
the partner client's DeviceKey, from the dev KTP persona's card and photos of
the card holder framed like selfies and lit by the challenge's colours."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from identity_platform_client import DeviceKey, build_bundle, flash_frames
from tests.e2e.test_onboarding import flash, selfie
from tests.support import TESTDATA
from tests.support.biometrics import jpeg


class Phone:
    def __init__(self) -> None:
        self.key = DeviceKey()

    def ktp(self, challenge: dict[str, Any]) -> dict[str, Any]:
        """The card unflashed, then lit by each colour (a physical card answers the flash)."""
        card = (TESTDATA / "ktp" / "ktp_captured.jpg").read_bytes()
        image = cv2.imdecode(np.frombuffer(card, np.uint8), cv2.IMREAD_COLOR)
        frames = flash_frames(
            card, flash(image, challenge), int(challenge.get("flashDurationMs", 400))
        )
        return build_bundle(self.key, challenge["challengeId"], frames)

    def selfie(self, challenge: dict[str, Any], photo: str) -> dict[str, Any]:
        image = selfie(photo)
        frames = flash_frames(
            jpeg(image), flash(image, challenge), int(challenge.get("flashDurationMs", 400))
        )
        return build_bundle(self.key, challenge["challengeId"], frames)

    def answer(self, challenge: dict[str, Any], photo: str = "img2.jpg") -> dict[str, Any]:
        """The bundle for a challenge of any purpose."""
        if challenge.get("purpose") == "CHALLENGE_PURPOSE_KTP_CAPTURE":
            return self.ktp(challenge)
        return self.selfie(challenge, photo)
