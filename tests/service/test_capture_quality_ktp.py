"""CheckKtp on a real capture-quality server (port 0) with the real OCR and face models."""

from __future__ import annotations

import cv2
import grpc
import numpy as np
import pytest

from identity_platform_api.capture_quality.v1 import capture_quality_pb2 as pb
from identity_platform_api.capture_quality.v1 import capture_quality_pb2_grpc
from identity_platform_api.common.v1 import types_pb2
from identity_runtime.status import error_info, status_from_rpc_error
from services.capture_quality.service import SPEC
from tests.support import channel, start_service
from tests.support.biometrics import tint
from tests.support.ktp import (
    DEV_NIK,
    encode,
    flat_card,
    ground_truth,
    ktp_bytes,
    ktp_path,
    on_background,
    overwrite,
    screen_recapture,
)

pytestmark = [pytest.mark.models, pytest.mark.slow]


@pytest.fixture(scope="module")
async def server():
    ktp_path("ktp_flat.png")
    running = await start_service(SPEC, {"CAPTURE_QUALITY_KTP_OCR_THREADS": "2"})
    yield running
    await running.stop(0)


@pytest.fixture(scope="module")
async def stub(server):
    async with channel(server) as ch:
        yield capture_quality_pb2_grpc.CaptureQualityServiceStub(ch)


async def check(stub, data: bytes, **kwargs) -> pb.CheckKtpResponse:
    return await stub.CheckKtp(
        pb.CheckKtpRequest(card_image=types_pb2.Image(data=data), **kwargs), timeout=60
    )


def fields_of(response: pb.CheckKtpResponse) -> dict[str, str]:
    return {f.name: f.value for f in response.fields}


def signal(response: pb.CheckKtpResponse, code: str) -> pb.TamperSignal | None:
    return next((s for s in response.tamper_signals if s.code == code), None)


@pytest.mark.parametrize("name", ["ktp_flat.png", "ktp_captured.jpg"])
async def test_dev_ktp_every_field_is_read_and_the_nik_is_consistent(stub, name: str) -> None:
    response = await check(
        stub, ktp_bytes(name), submitted_nik=DEV_NIK, include_portrait_crops=True
    )

    expected = ground_truth()
    read = fields_of(response)
    assert {k: read.get(k) for k in expected} == expected
    assert all(0.5 < f.confidence <= 1.0 for f in response.fields)
    assert read["issue_date"] == "03-02-2019"

    nik = response.nik
    assert nik.valid and list(nik.reasons) == []
    assert (nik.province_code, nik.regency_code, nik.district_code) == ("32", "3273", "327302")
    assert (nik.province_name, nik.regency_name, nik.district_name) == (
        "Jawa Barat",
        "Kota Bandung",
        "Coblong",
    )
    # Day 41 = 1 + 40: a woman born on 1 July 1995, as printed on the card.
    assert (nik.birth_date, nik.gender) == ("1995-07-01", "female")
    assert read["birth_date"] == "01-07-1995" and read["gender"] == "PEREMPUAN"

    assert response.card_found and len(response.card_corners) == 4
    assert {m.name: m.passed for m in response.measures} == {
        "card_text_sharpness": True,
        "card_glare_ratio": True,
        "card_width_px": True,
    }
    assert response.portrait_found and len(response.portrait.landmarks) == 5
    assert list(response.tamper_signals) == []
    assert response.verdict == pb.QUALITY_VERDICT_PASS, response.reasons
    assert response.ocr_model.startswith("rapidocr-3.10.0")

    aligned = response.portrait_crops.aligned
    assert (aligned.image.width, aligned.image.height, aligned.image.format) == (
        112,
        112,
        types_pb2.PIXEL_FORMAT_BGR8,
    )
    assert len(aligned.image.pixels) == 112 * 112 * 3 and aligned.alignment == "arcface-5pt-112"


async def test_portrait_crop_is_only_sent_when_asked(stub) -> None:
    response = await check(stub, ktp_bytes("ktp_flat.png"))
    assert response.portrait_found and not response.HasField("portrait_crops")


async def test_aligned_portrait_shows_a_face_where_the_template_puts_it(stub) -> None:
    from identity_ktp.portrait import PortraitFinder, load_face_detector

    response = await check(stub, ktp_bytes("ktp_captured.jpg"), include_portrait_crops=True)
    raw = response.portrait_crops.aligned.image
    crop = np.frombuffer(raw.pixels, np.uint8).reshape(raw.height, raw.width, 3)
    # Re-detect with a margin around the crop (YuNet wants some context).
    padded = cv2.copyMakeBorder(crop, 56, 56, 56, 56, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    faces = PortraitFinder(load_face_detector(score_threshold=0.5)).detect(padded)
    assert faces, "no face found in the aligned crop"
    eyes = np.array(faces[0].landmarks[:2]) - 56
    assert np.allclose(eyes, [(38.3, 51.7), (73.5, 51.5)], atol=5), eyes


async def test_a_submitted_nik_that_differs_from_the_card_is_flagged_and_decisive(
    stub, capfd
) -> None:
    submitted = "3273024107950004"
    response = await check(stub, ktp_bytes("ktp_captured.jpg"), submitted_nik=submitted)
    mismatch = signal(response, "NIK_MISMATCH_SUBMITTED")
    assert mismatch is not None and mismatch.decisive and mismatch.score == pytest.approx(1.0)
    assert response.verdict == pb.QUALITY_VERDICT_FAIL
    assert "NIK_MISMATCH_SUBMITTED" in [r.code for r in response.reasons]
    # Neither NIK appears in the explanation or in the service's output.
    text = str(list(response.tamper_signals)) + str(list(response.reasons))
    assert submitted not in text and DEV_NIK not in text
    captured = capfd.readouterr()
    assert (
        submitted not in captured.out + captured.err and DEV_NIK not in captured.out + captured.err
    )


async def test_submitted_fields_are_compared_with_the_card(stub) -> None:
    response = await check(
        stub,
        ktp_bytes("ktp_flat.png"),
        submitted_fields={"name": "BUDI SANTOSO", "birth_date": "1-7-1995", "religion": "islam"},
    )
    mismatches = [s for s in response.tamper_signals if s.code == "FIELD_MISMATCH_SUBMITTED"]
    assert len(mismatches) == 1 and "'name'" in mismatches[0].detail
    assert "BUDI" not in mismatches[0].detail and not mismatches[0].decisive


async def test_submitted_fields_in_the_documented_formats_agree_with_the_card(stub) -> None:
    """ISO birth date and English gender (KtpOcrFields' formats) against the card's
    DD-MM-YYYY and PEREMPUAN: no mismatch signal."""
    response = await check(
        stub,
        ktp_bytes("ktp_flat.png"),
        submitted_fields={"birth_date": "1995-07-01", "gender": "female"},
    )
    assert [s.code for s in response.tamper_signals if s.code == "FIELD_MISMATCH_SUBMITTED"] == []


async def test_printed_birth_date_contradicting_the_nik_is_flagged(stub) -> None:
    edited = overwrite(flat_card(), (250, 200, 520, 229), ": BANDUNG, 01-08-1995")
    response = await check(stub, encode(edited))
    assert fields_of(response)["birth_date"] == "01-08-1995"
    flagged = signal(response, "NIK_BIRTH_DATE_MISMATCH")
    assert flagged is not None and flagged.decisive
    assert response.verdict == pb.QUALITY_VERDICT_FAIL


async def test_printed_gender_contradicting_the_nik_is_flagged(stub) -> None:
    edited = overwrite(flat_card(), (250, 234, 405, 262), ": LAKI-LAKI")
    response = await check(stub, encode(edited))
    assert fields_of(response)["gender"] == "LAKI-LAKI"
    flagged = signal(response, "NIK_GENDER_MISMATCH")
    assert flagged is not None and flagged.decisive
    assert response.verdict == pb.QUALITY_VERDICT_FAIL


async def test_a_card_without_its_portrait_fails(stub) -> None:
    card = flat_card()
    card[125:435, 740:985] = np.median(card[440:460, 700:740].reshape(-1, 3), axis=0).astype(
        np.uint8
    )
    response = await check(stub, encode(on_background(card)))
    assert response.card_found and not response.portrait_found
    missing = signal(response, "PORTRAIT_MISSING")
    assert missing is not None and missing.decisive
    assert response.verdict == pb.QUALITY_VERDICT_FAIL


async def test_an_upside_down_capture_is_turned_and_read(stub) -> None:
    turned = cv2.rotate(cv2.imread(str(ktp_path("ktp_captured.jpg"))), cv2.ROTATE_180)
    response = await check(stub, encode(turned, ".jpg"), submitted_nik=DEV_NIK)
    assert response.portrait_found and response.nik.valid
    assert fields_of(response)["name"] == "SITI RAHAYU"
    assert response.verdict == pb.QUALITY_VERDICT_PASS, response.reasons


async def test_blur_and_glare_on_the_card_fail_their_measures(stub) -> None:
    card = on_background(flat_card())
    blurred = cv2.GaussianBlur(card, (0, 0), 3.0)
    glared = card.copy()
    cv2.ellipse(glared, (560, 420), (160, 90), 0, 0, 360, (255, 255, 255), -1)
    results = {}
    for name, image in (("blurred", blurred), ("glared", glared)):
        response = await check(stub, encode(image))
        results[name] = {m.name: (m.passed, m.reason_code) for m in response.measures}
        assert response.verdict == pb.QUALITY_VERDICT_FAIL
    assert results["blurred"]["card_text_sharpness"] == (False, "CARD_TOO_BLURRY")
    assert results["glared"]["card_glare_ratio"] == (False, "CARD_GLARE")


async def test_a_photo_without_a_card_fails_with_card_not_found(stub) -> None:
    noise = np.random.default_rng(1).integers(0, 255, (600, 600, 3), dtype=np.uint8)
    response = await check(stub, encode(noise))
    assert not response.card_found
    assert [r.code for r in response.reasons] == ["CARD_NOT_FOUND"]


async def test_a_simulated_screen_recapture_is_decisive_on_a_sharp_capture(stub) -> None:
    response = await check(stub, screen_recapture(flat_card()), submitted_nik=DEV_NIK)
    suspected = signal(response, "SCREEN_RECAPTURE_SUSPECTED")
    assert suspected is not None and suspected.decisive and suspected.score >= 0.85
    assert response.nik.valid
    assert response.verdict == pb.QUALITY_VERDICT_FAIL
    assert "SCREEN_RECAPTURE_SUSPECTED" in [r.code for r in response.reasons]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "IMAGE_EMPTY"),
        (b"definitely not an image", "IMAGE_UNDECODABLE"),
        ("truncated", "IMAGE_UNDECODABLE"),
        ("huge", "IMAGE_TOO_LARGE"),
        ("tiny", "IMAGE_TOO_SMALL"),
    ],
)
async def test_bad_images_are_invalid_argument(stub, data, reason: str) -> None:
    from tests.support.images import png_claiming

    if data == "truncated":
        whole = ktp_bytes("ktp_captured.jpg")
        data = whole[: len(whole) * 2 // 3]
    elif data == "huge":
        data = png_claiming(20000, 20000)
    elif data == "tiny":
        data = encode(np.zeros((100, 160, 3), np.uint8))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await check(stub, data)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(status_from_rpc_error(caught.value)).reason == reason


@pytest.mark.parametrize(
    ("nik", "rule"), [("32730241079500", "NIK_LENGTH"), ("3273O24107950003", "NIK_NOT_NUMERIC")]
)
async def test_a_malformed_submitted_nik_is_nik_invalid(stub, nik: str, rule: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await check(stub, ktp_bytes("ktp_flat.png"), submitted_nik=nik)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(status_from_rpc_error(caught.value))
    assert info.reason == "NIK_INVALID" and info.metadata["check"] == rule
    assert nik not in caught.value.details()


async def test_an_unknown_submitted_field_is_invalid_field(stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await check(stub, ktp_bytes("ktp_flat.png"), submitted_fields={"mothers_name": "X"})
    info = error_info(status_from_rpc_error(caught.value))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.reason == "INVALID_FIELD" and info.metadata["field"] == "submitted_fields"


async def test_a_card_shaped_photo_that_is_not_a_ktp_is_not_a_card(stub) -> None:
    blank = np.full((638, 1012, 3), 200, np.uint8)
    cv2.putText(blank, "HELLO WORLD", (100, 300), cv2.FONT_HERSHEY_SIMPLEX, 2, (0, 0, 0), 3)
    response = await check(stub, encode(blank))
    assert not response.card_found
    assert [r.code for r in response.reasons] == ["CARD_NOT_FOUND"]


async def test_concurrent_and_abandoned_calls_share_the_worker_safely(stub) -> None:
    import asyncio

    data = ktp_bytes("ktp_flat.png")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CheckKtp(pb.CheckKtpRequest(card_image=types_pb2.Image(data=data)), timeout=0.3)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The abandoned analysis still finishes before the worker is reused.
    first, second = await asyncio.gather(
        check(stub, data), check(stub, data, submitted_nik=DEV_NIK)
    )
    assert first.verdict == second.verdict == pb.QUALITY_VERDICT_PASS


async def test_flash_frames_get_the_cards_colour_in_order(stub) -> None:
    """The card's colour on each flash frame (for liveness): a red flash
    raises red over blue inside the card, a blue flash the reverse."""
    card = cv2.imread(str(ktp_path("ktp_captured.jpg")))
    frames = [encode(tint(card, colour)) for colour in ("#FF0000", "#0000FF")]
    reply = await check(
        stub,
        ktp_bytes("ktp_captured.jpg"),
        flash_frames=[types_pb2.Image(data=f) for f in frames],
    )
    assert reply.card_found
    red, blue = reply.flash_colours
    assert red.face_r / red.face_b > 1.1 * blue.face_r / blue.face_b


async def test_a_bad_flash_frame_is_refused_before_any_model_runs(stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await check(
            stub,
            ktp_bytes("ktp_captured.jpg"),
            flash_frames=[types_pb2.Image(data=b"not an image")],
        )
    info = error_info(status_from_rpc_error(caught.value))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.reason == "IMAGE_UNDECODABLE" and info.metadata["field"] == "flash_frames[0]"
