"""Where uploads go: the local filesystem bucket with its presigned, expiring
upload URLs (one machine), or any S3-compatible store (production).

A presigned URL is `{base}/api/face-match/uploads/{key}?expires=<unix>&signature=<hex>`
where signature = HMAC-SHA256(upload_signing_key, "PUT\\n{key}\\n{expires}").
The gateway serves the URL and forwards the body to face-match's PutObject,
which checks the signature (constant time), the expiry, the content type and
the size before writing. Keys are `<submission_id>/<selfie|reference>`; any
other shape is refused, so a key can never leave the bucket directory.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from identity_runtime.errors import InvalidArgument, PermissionDenied, ResourceExhausted
from services.face_match.sealing import ImageSeals

IMAGES = ("selfie", "reference")
CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp")
_KEY = re.compile(r"fms_[A-Za-z0-9]{8,40}/(selfie|reference)")
UPLOAD_PATH = "/api/face-match/uploads/"


def object_key(submission_id: str, image: str) -> str:
    return f"{submission_id}/{image}"


@dataclass(frozen=True)
class Presigned:
    url: str
    expires: int


class UploadSigner:
    def __init__(self, key: str, base_url: str, max_bytes: int):
        self._key = key.encode()
        self._base = base_url.rstrip("/")
        self.max_bytes = max_bytes

    def _mac(self, key: str, expires: int) -> str:
        return hmac.new(self._key, f"PUT\n{key}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def presign(self, key: str, expires: int) -> Presigned:
        query = f"expires={expires}&signature={self._mac(key, expires)}"
        url = f"{self._base}{UPLOAD_PATH}{quote(key, safe='/')}?{query}"
        return Presigned(url, expires)

    def check(
        self, key: str, expires: int, signature: str, content_type: str, size: int, now: datetime
    ) -> str:
        """The image name the upload is for; 403 / 415 / 413 otherwise."""
        match = _KEY.fullmatch(key)
        # compare_digest takes ASCII text only (a TypeError, a 500, otherwise).
        if (
            match is None
            or not signature.isascii()
            or not hmac.compare_digest(self._mac(key, expires), signature.lower())
        ):
            raise PermissionDenied(
                "the upload URL's signature does not verify", "UPLOAD_URL_INVALID"
            )
        if now.timestamp() > expires:
            raise PermissionDenied("the upload URL has expired", "UPLOAD_URL_EXPIRED")
        media = content_type.split(";", 1)[0].strip().lower()
        if media not in CONTENT_TYPES:
            raise InvalidArgument(
                "upload an image/jpeg, image/png or image/webp",
                "UNSUPPORTED_MEDIA_TYPE",
                {"allowed": ",".join(CONTENT_TYPES)},
            )
        if size > self.max_bytes:
            raise ResourceExhausted(
                "the upload is larger than allowed", "PAYLOAD_TOO_LARGE", {"limit": self.max_bytes}
            )
        if size == 0:
            raise InvalidArgument("the upload is empty", "IMAGE_EMPTY")
        return match.group(1)


class LocalBucket:
    """Objects as files under one directory (0700), written atomically.

    The files are stored as given: face-match seals every upload before it
    writes it and opens it after reading, with `seals` (sealing.py: AES-256-GCM
    under the submission's data key, bound to organisation, submission and
    image)."""

    def __init__(self, directory: Path, seals: ImageSeals):
        self.directory = directory
        self.seals = seals
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, key: str) -> Path:
        if _KEY.fullmatch(key) is None:
            raise ValueError("not an object key")
        return self.directory / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True, mode=0o700)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(partial, path)

    # Only a regular file is an object (a directory or other entry made in the
    # bucket by hand is none, rather than an error).
    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.is_file() else None

    def size(self, key: str) -> int | None:
        path = self._path(key)
        return path.stat().st_size if path.is_file() else None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_submission(self, submission_id: str) -> None:
        for image in IMAGES:
            self._path(object_key(submission_id, image)).unlink(missing_ok=True)
        folder = self.directory / submission_id
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


class S3Store:
    """An S3-compatible bucket (boto3): presigned PUTs straight to the store.

    The presigned URL signs the method, the key, the expiry and the
    Content-Type (image/jpeg, sent back in the upload's headers), so the store
    itself refuses a tampered or expired URL or another content type (403,
    in the store's XML error format). S3 cannot bound a presigned PUT's size:
    confirm asks the store whether both objects exist and refuses one larger
    than `max_bytes` (IMAGE_TOO_LARGE) before reading it (uploads.py); the
    worker checks the size again before it reads.

    Sealed at rest by the store: the URL also signs server-side encryption
    (`x-amz-server-side-encryption: AES256`, or `aws:kms` with
    `x-amz-server-side-encryption-aws-kms-key-id`), so the partner must send
    those headers (`upload_headers`, returned with each upload URL) and a PUT
    without them, or asking for other encryption, fails the signature: an
    object cannot be written unencrypted through our URL.
    """

    CONTENT_TYPE = "image/jpeg"
    ENCRYPTIONS = ("AES256", "aws:kms")

    def __init__(
        self,
        client: Any,
        bucket: str,
        max_bytes: int,
        server_side_encryption: str = "AES256",
        kms_key_id: str = "",
    ):
        if server_side_encryption not in self.ENCRYPTIONS:
            raise ValueError("server-side encryption must be AES256 or aws:kms")
        self.client = client
        self.bucket = bucket
        self.max_bytes = max_bytes
        self.server_side_encryption = server_side_encryption
        self.kms_key_id = kms_key_id if server_side_encryption == "aws:kms" else ""

    def _encryption_params(self) -> dict[str, str]:
        params = {"ServerSideEncryption": self.server_side_encryption}
        if self.kms_key_id:
            params["SSEKMSKeyId"] = self.kms_key_id
        return params

    def upload_headers(self) -> dict[str, str]:
        """The headers a presigned PUT must carry (each is signed)."""
        headers = {
            "Content-Type": self.CONTENT_TYPE,
            "x-amz-server-side-encryption": self.server_side_encryption,
        }
        if self.kms_key_id:
            headers["x-amz-server-side-encryption-aws-kms-key-id"] = self.kms_key_id
        return headers

    def presign(self, key: str, seconds: int) -> str:
        url: str = self.client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ContentType": self.CONTENT_TYPE,
                **self._encryption_params(),
            },
            ExpiresIn=seconds,
            HttpMethod="PUT",
        )
        return url

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    def get(self, key: str) -> bytes | None:
        size = self.size(key)
        if size is None:
            return None
        if size > self.max_bytes:
            raise ObjectTooLarge(key)
        body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def delete_submission(self, submission_id: str) -> None:
        self.client.delete_objects(
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": object_key(submission_id, i)} for i in IMAGES]},
        )


class ObjectTooLarge(Exception):
    """An object in the store is larger than uploads may be."""


ObjectStore = LocalBucket | S3Store
