"""Portrait crops come from capture-quality (the one owner of the face
detector): CropPortrait on a real server, through kyc-tier's own adapter
(GrpcCaptureQuality.crop_portrait) as the console's review view calls it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import pytest_asyncio

from identity_runtime.clients import ClientFactory, ClientOptions
from identity_runtime.errors import DomainError
from services.capture_quality import portraits
from services.capture_quality.service import SPEC as CAPTURE_QUALITY
from services.kyc_tier.adapters.faces import GrpcCaptureQuality
from tests.support import start_service
from tests.support.biometrics import FACES, jpeg
from tests.support.meshauth import signer

pytestmark = [pytest.mark.models]

SELFIE = (FACES / "img2.jpg").read_bytes()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def quality():
    server = await start_service(CAPTURE_QUALITY)
    clients = ClientFactory(
        {"capture_quality": server.address},
        ClientOptions(default_timeout_seconds=30),
        signer=signer("kyc-tier"),
    )
    yield GrpcCaptureQuality(clients)
    await clients.close()
    await server.stop(0)


def decoded(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


async def test_a_face_is_cut_with_its_margin_and_scaled_down(quality) -> None:
    crop = decoded(await quality.crop_portrait(SELFIE))
    original = decoded(SELFIE)
    assert max(crop.shape[:2]) <= portraits.MAX_SIDE
    assert crop.shape[0] * crop.shape[1] < original.shape[0] * original.shape[1]


async def test_an_image_without_a_face_is_its_central_square(quality) -> None:
    blank = jpeg(np.full((300, 500, 3), 200, np.uint8))
    crop = decoded(await quality.crop_portrait(blank))
    assert crop.shape[:2] == (300, 300)


async def test_what_does_not_decode_is_no_portrait(quality) -> None:
    assert await quality.crop_portrait(b"not an image at all") is None
    assert await quality.crop_portrait(b"") is None


async def test_other_failures_are_not_taken_for_a_missing_portrait() -> None:
    # Nothing listens there: the dashboard must see the outage, not "no portrait".
    clients = ClientFactory(
        {"capture_quality": "127.0.0.1:1"},
        # Refused at once; a short deadline could run out first on a loaded machine.
        ClientOptions(default_timeout_seconds=30),
        signer=signer("kyc-tier"),
    )
    try:
        with pytest.raises(DomainError) as caught:
            await GrpcCaptureQuality(clients).crop_portrait(SELFIE)
        assert caught.value.code == "UNAVAILABLE"
    finally:
        await clients.close()
