"""The KTP models are verified before use; an altered file stops the start-up."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from identity_ktp.ocr import RAPIDOCR_MODELS, OcrEngine, rapidocr_model_dir
from identity_ktp.portrait import ModelIntegrityError, load_face_detector, yunet_path
from services.capture_quality.service import SPEC
from tests.support import start_service

pytestmark = pytest.mark.models


def altered_copy(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    return target


def test_the_yunet_file_is_the_pinned_one_and_loads() -> None:
    assert load_face_detector(yunet_path()) is not None


def test_an_altered_face_detector_is_refused(tmp_path: Path) -> None:
    altered = altered_copy(yunet_path(), tmp_path / "yunet.onnx")
    with pytest.raises(ModelIntegrityError, match="expected 49f000ec"):
        load_face_detector(altered)


def test_a_missing_face_detector_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match="cannot read"):
        load_face_detector(tmp_path / "absent.onnx")


@pytest.mark.parametrize("role", sorted(RAPIDOCR_MODELS))
def test_an_altered_ocr_model_is_refused(tmp_path: Path, role: str) -> None:
    for name, _ in RAPIDOCR_MODELS.values():
        shutil.copyfile(rapidocr_model_dir() / name, tmp_path / name)
    name, sha256 = RAPIDOCR_MODELS[role]
    altered_copy(rapidocr_model_dir() / name, tmp_path / name)
    with pytest.raises(ModelIntegrityError, match=f"OCR {role} model"):
        OcrEngine(model_dir=tmp_path)


def test_ocr_sessions_use_the_configured_threads() -> None:
    engine = OcrEngine(threads=1)
    assert [s.get_session_options().intra_op_num_threads for s in engine.sessions()] == [1, 1, 1]


async def test_the_service_does_not_start_with_an_altered_model(
    monkeypatch, tmp_path: Path
) -> None:
    from identity_ktp import portrait

    altered = altered_copy(yunet_path(), tmp_path / "yunet.onnx")
    monkeypatch.setattr(portrait, "yunet_path", lambda: altered)
    with pytest.raises(ModelIntegrityError):
        await start_service(SPEC)
