"""The sealing of Face Match's local-bucket objects (services/face_match/sealing.py)
and the settings it needs; the service-level behaviour is in
tests/service/test_face_match_sealing.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from identity_crypto.keyring import generate
from identity_runtime.settings import SettingsError, load_settings
from services.face_match.sealing import MAGIC, ObjectSeal, ObjectUnreadable, open_object
from services.face_match.settings import FaceMatchSettings

KEY = os.urandom(32)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4


def seal_of(org: str = "org_a", submission: str = "fms_aaaaaaaa0001") -> ObjectSeal:
    return ObjectSeal(org, submission, KEY)


def reason(seal: ObjectSeal, image: str, stored: bytes) -> str:
    with pytest.raises(ObjectUnreadable) as exc:
        seal.open(image, stored)
    # Errors name the image and the problem, never key material or bytes.
    assert KEY.hex() not in str(exc.value) and "JFIF" not in str(exc.value)
    return exc.value.reason


def test_an_object_opens_only_as_its_own_organisation_submission_and_image() -> None:
    stored = seal_of().seal("selfie", JPEG)
    assert stored.startswith(MAGIC) and b"JFIF" not in stored and b"\xff\xd8\xff" not in stored
    assert seal_of().open("selfie", stored) == JPEG
    assert seal_of().seal("selfie", JPEG) != stored  # a fresh nonce each time
    assert reason(seal_of(), "reference", stored) == "UPLOAD_SEAL_INVALID"
    assert reason(seal_of(submission="fms_aaaaaaaa0002"), "selfie", stored) == (
        "UPLOAD_SEAL_INVALID"
    )
    assert reason(seal_of(org="org_b"), "selfie", stored) == "UPLOAD_SEAL_INVALID"
    assert reason(ObjectSeal("org_a", "fms_aaaaaaaa0001", os.urandom(32)), "selfie", stored) == (
        "UPLOAD_SEAL_INVALID"
    )
    flipped = bytearray(stored)
    flipped[-1] ^= 0x80
    assert reason(seal_of(), "selfie", bytes(flipped)) == "UPLOAD_SEAL_INVALID"
    assert reason(seal_of(), "selfie", stored[: len(MAGIC) + 10]) == "UPLOAD_SEAL_INVALID"


def test_a_plain_object_is_refused_as_not_sealed() -> None:
    assert reason(seal_of(), "selfie", JPEG) == "UPLOAD_NOT_SEALED"
    assert reason(seal_of(), "selfie", b"") == "UPLOAD_NOT_SEALED"


def test_without_a_key_a_sealed_object_is_told_from_a_plain_one() -> None:
    """No live key (None): a sealed object's key is gone, UPLOAD_KEY_DESTROYED;
    only a plain object is UPLOAD_NOT_SEALED (stored before sealing)."""
    stored = seal_of().seal("selfie", JPEG)
    assert open_object(seal_of(), "selfie", stored) == JPEG
    for data, expected in (
        (stored, "UPLOAD_KEY_DESTROYED"),
        (JPEG, "UPLOAD_NOT_SEALED"),
        (b"", "UPLOAD_NOT_SEALED"),
    ):
        with pytest.raises(ObjectUnreadable) as exc:
            open_object(None, "selfie", data)
        assert exc.value.reason == expected
        assert "JFIF" not in str(exc.value)


def settings_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    key = "k" * 32
    return {
        "FACE_MATCH_DATABASE_URL": f"sqlite:///{tmp_path}/fm.db",
        "FACE_MATCH_UPLOAD_SIGNING_KEY": key,
        "FACE_MATCH_CALLBACK_SIGNING_KEY": key,
        "FACE_MATCH_OAUTH_CLIENT_PEPPER": key,
        "FACE_MATCH_OAUTH_SIGNING_KEYS": '{"primary": "a", "keys": {}}',
        "FACE_MATCH_BUCKET_DIR": str(tmp_path / "bucket"),
        **{f"FACE_MATCH_{k}": v for k, v in extra.items()},
    }


def load(environ: dict[str, str]) -> FaceMatchSettings:
    return load_settings(FaceMatchSettings, "FACE_MATCH", environ)


def test_the_local_bucket_needs_the_key_encryption_keys(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="FACE_MATCH_KEK_KEYRING_FILE"):
        load(settings_env(tmp_path))
    keyring = generate("kek-1").to_json()
    assert load(settings_env(tmp_path, KEK_KEYRING=keyring)).storage == "local"
    # The store's own encryption with storage=s3: no keyring needed.
    s3 = load(settings_env(tmp_path, STORAGE="s3", S3_BUCKET="uploads"))
    assert s3.s3_server_side_encryption == "AES256"


def test_server_side_encryption_settings(tmp_path: Path) -> None:
    base = {"STORAGE": "s3", "S3_BUCKET": "uploads"}
    with pytest.raises(SettingsError, match="FACE_MATCH_S3_SERVER_SIDE_ENCRYPTION"):
        load(settings_env(tmp_path, **base, S3_SERVER_SIDE_ENCRYPTION="none"))
    with pytest.raises(SettingsError, match="FACE_MATCH_S3_SSE_KMS_KEY_ID"):
        load(settings_env(tmp_path, **base, S3_SSE_KMS_KEY_ID="k1"))
    kms = load(
        settings_env(tmp_path, **base, S3_SERVER_SIDE_ENCRYPTION="aws:kms", S3_SSE_KMS_KEY_ID="k1")
    )
    assert (kms.s3_server_side_encryption, kms.s3_sse_kms_key_id) == ("aws:kms", "k1")
