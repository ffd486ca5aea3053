"""The dev KTP (tests/data/ktp, synthetic) and cards derived from it for KTP tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tests.support import TESTDATA

KTP_DIR = TESTDATA / "ktp"
DEV_NIK = "3273024107950003"

# ground_truth.txt label -> KtpField name.
_GROUND_TRUTH_LABELS = {
    "NIK": "nik",
    "Nama": "name",
    "Alamat": "address",
    "RT/RW": "rt_rw",
    "Kel/Desa": "village",
    "Kecamatan": "district",
    "Agama": "religion",
    "Status Perkawinan": "marital_status",
    "Pekerjaan": "occupation",
    "Kewarganegaraan": "nationality",
    "Berlaku Hingga": "valid_until",
}


def ktp_path(name: str) -> Path:
    return KTP_DIR / name


def ktp_bytes(name: str) -> bytes:
    return ktp_path(name).read_bytes()


def ground_truth() -> dict[str, str]:
    """Every field of the dev KTP, by KtpField name, from ground_truth.txt."""
    lines = [
        line.strip()
        for line in ktp_path("ground_truth.txt").read_text().splitlines()
        if line.strip()
    ]
    fields: dict[str, str] = {}
    fields["province"] = lines[0].removeprefix("PROVINSI ").strip()
    fields["regency"] = lines[1]
    for line in lines[2:]:
        label, _, value = line.partition(":")
        label, value = label.strip(), value.strip()
        if label == "Tempat/Tgl Lahir":
            place, _, date = value.partition(",")
            fields["birth_place"], fields["birth_date"] = place.strip(), date.strip()
        elif label == "Jenis Kelamin":
            gender, _, blood = value.partition("Gol. Darah")
            fields["gender"] = gender.strip()
            fields["blood_type"] = blood.replace(":", "").strip()
        elif label in _GROUND_TRUTH_LABELS:
            fields[_GROUND_TRUTH_LABELS[label]] = value
    return fields


def flat_card() -> np.ndarray:
    image = cv2.imread(str(ktp_path("ktp_flat.png")))
    assert image is not None, "ktp_flat.png"
    return image


def encode(image: np.ndarray, ext: str = ".png") -> bytes:
    ok, data = cv2.imencode(ext, image)
    assert ok
    return data.tobytes()


def on_background(card: np.ndarray, angle: float = 3.0) -> np.ndarray:
    """The card photographed on a table: padded, slightly rotated."""
    height, width = card.shape[:2]
    canvas = np.full((height + 300, width + 300, 3), (90, 110, 120), np.uint8)
    canvas[150 : 150 + height, 150 : 150 + width] = card
    matrix = cv2.getRotationMatrix2D((canvas.shape[1] / 2, canvas.shape[0] / 2), angle, 1.0)
    return cv2.warpAffine(
        canvas, matrix, (canvas.shape[1], canvas.shape[0]), borderValue=(90, 110, 120)
    )


def overwrite(
    card: np.ndarray, box: tuple[int, int, int, int], text: str, scale: float = 0.75
) -> np.ndarray:
    """The card with the text in `box` (x0, y0, x1, y1) painted over and re-typed."""
    edited = card.copy()
    x0, y0, x1, y1 = box
    background = np.median(card[y0:y1, x1 + 5 : x1 + 40].reshape(-1, 3), axis=0)
    edited[y0:y1, x0:x1] = background.astype(np.uint8)
    cv2.putText(
        edited,
        text,
        (x0 + 2, y1 - 6),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (20, 20, 20),
        2,
        cv2.LINE_AA,
    )
    return edited


def screen_recapture(
    card: np.ndarray, scale: float = 0.45, angle: float = 4.0, blur: float = 0.7
) -> bytes:
    """A simulated photo of the card shown on an RGB-stripe display (JPEG)."""
    rng = np.random.default_rng(7)
    up = cv2.resize(card, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST).astype(np.float32)
    height, width = up.shape[:2]
    grid = np.zeros((height, width, 3), np.float32)
    for column, channel in enumerate((2, 1, 0)):
        grid[:, column::3, channel] = 1.0
    grid[2::3] *= 0.5
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale)
    out_w, out_h = int(width * scale * 1.25), int(height * scale * 1.35)
    matrix[0, 2] += (out_w - width) / 2
    matrix[1, 2] += (out_h - height) / 2
    photo = cv2.warpAffine(
        np.clip(up * grid * 1.6, 0, 255),
        matrix,
        (out_w, out_h),
        flags=cv2.INTER_AREA,
        borderValue=(40, 40, 40),
    )
    photo = cv2.GaussianBlur(photo, (0, 0), blur) + rng.normal(0, 3, photo.shape)
    ok, data = cv2.imencode(
        ".jpg", np.clip(photo, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85]
    )
    assert ok
    return data.tobytes()
