"""The customer's phone for tests of other clients (the stubs package, the
generated clients): it answers a challenge with a capture bundle signed with
the partner client's DeviceKey, from the dev KTP persona's card and photos of
the card holder framed like selfies and lit by the challenge's colours."""

from __future__ import annotations

from typing import Any

from identity_platform_client import DeviceKey, Frame, build_bundle, flash_frames
from tests.e2e.test_onboarding import flash, selfie
from tests.support import TESTDATA
from tests.support.biometrics import jpeg


class Phone:
    def __init__(self) -> None:
        self.key = DeviceKey()

    def ktp(self, challenge: dict[str, Any]) -> dict[str, Any]:
        card = (TESTDATA / "ktp" / "ktp_captured.jpg").read_bytes()
        return build_bundle(self.key, challenge["challengeId"], [Frame(card)])

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
