"""Residency by configuration: the production profile refuses a store holding
personal data outside the allowed (Indonesian) regions, or undeclared."""

from __future__ import annotations

from pathlib import Path

import pytest

from identity_runtime import residency
from identity_runtime.settings import SettingsError, load_settings
from services.embedding.settings import EmbeddingSettings
from services.face_match.settings import FaceMatchSettings
from services.kyc_tier.settings import KycTierSettings
from services.liveness.settings import LivenessSettings
from services.matching.settings import MatchingSettings

JKT_RDS = "postgresql://kyc:pw@kyc.abc123.ap-southeast-3.rds.amazonaws.com:5432/kyc"
SG_RDS = "postgresql://kyc:pw@kyc.abc123.ap-southeast-1.rds.amazonaws.com:5432/kyc"


def production(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "LIVENESS_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        "LIVENESS_ENVIRONMENT": "production",
        "LIVENESS_DATA_REGION": "id-jkt-1",
        **{f"LIVENESS_{k}": v for k, v in extra.items()},
    }


def load(environ: dict[str, str]) -> LivenessSettings:
    return load_settings(LivenessSettings, "LIVENESS", environ)


@pytest.mark.parametrize(
    "url",
    [
        JKT_RDS,
        "postgresql://kyc@postgres.identity.svc.cluster.local:5432/kyc",
        "postgresql://kyc@127.0.0.1:5432/kyc",
    ],
)
def test_production_starts_with_a_store_in_jakarta(tmp_path: Path, url: str) -> None:
    assert load(production(tmp_path, DATABASE_URL=url)).data_region == "id-jkt-1"


def test_production_refuses_a_database_outside_the_allowed_regions(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="LIVENESS_DATABASE_URL: .*ap-southeast-1") as err:
        load(production(tmp_path, DATABASE_URL=SG_RDS))
    # The host is named, never the URL's password.
    assert "pw" not in str(err.value)


def test_production_refuses_an_undeclared_store(tmp_path: Path) -> None:
    url = "postgresql://kyc@db.example.net:5432/kyc"
    with pytest.raises(SettingsError, match="region of db.example.net is not declared"):
        load(production(tmp_path, DATABASE_URL=url))
    declared = production(tmp_path, DATABASE_URL=url, ENDPOINT_REGIONS="db.example.net=id-jkt-1")
    assert load(declared).endpoint_regions
    foreign = production(tmp_path, DATABASE_URL=url, ENDPOINT_REGIONS="db.example.net=sg-sin-1")
    with pytest.raises(SettingsError, match="db.example.net is in sg-sin-1, outside"):
        load(foreign)


def test_a_declaration_cannot_move_a_foreign_cloud_region_into_indonesia(tmp_path: Path) -> None:
    host = "kyc.abc123.ap-southeast-1.rds.amazonaws.com"
    environ = production(tmp_path, DATABASE_URL=SG_RDS, ENDPOINT_REGIONS=f"{host}=id-jkt-1")
    with pytest.raises(SettingsError, match="names the cloud region of ap-southeast-1"):
        load(environ)


def test_production_refuses_an_undeclared_or_foreign_service_region(tmp_path: Path) -> None:
    environ = production(tmp_path)
    del environ["LIVENESS_DATA_REGION"]
    with pytest.raises(SettingsError, match="LIVENESS_DATA_REGION: production must declare"):
        load(environ)
    with pytest.raises(SettingsError, match="LIVENESS_DATA_REGION: id-sby-1 is not one of"):
        load(production(tmp_path, DATA_REGION="id-sby-1"))


def test_the_disaster_recovery_site_is_an_explicit_allowed_region(tmp_path: Path) -> None:
    url = "postgresql://kyc@db-dr.example.net/kyc"
    environ = production(
        tmp_path,
        DATA_REGION="id-sby-1",
        ALLOWED_REGIONS="id-jkt-1,id-sby-1",
        DATABASE_URL=url,
        ENDPOINT_REGIONS="db-dr.example.net=id-sby-1",
    )
    assert load(environ).allowed_regions == ("id-jkt-1", "id-sby-1")
    with pytest.raises(SettingsError, match="'ap-southeast-1' is not an Indonesian region"):
        load(production(tmp_path, ALLOWED_REGIONS="id-jkt-1,ap-southeast-1"))


def test_development_only_checks_the_declarations(tmp_path: Path) -> None:
    environ = {"LIVENESS_DATABASE_URL": SG_RDS}
    assert load(environ).data_region == ""
    with pytest.raises(SettingsError, match="host=region"):
        load({**environ, "LIVENESS_ENDPOINT_REGIONS": "db.example.net"})


def test_triton_and_kyc_tier_stores_are_checked_too() -> None:
    triton = {
        "EMBEDDING_ENVIRONMENT": "production",
        "EMBEDDING_DATA_REGION": "id-jkt-1",
        "EMBEDDING_BACKEND": "triton",
        "EMBEDDING_TRITON_URL": "triton.us-east-1.example.com:8001",
    }
    with pytest.raises(SettingsError, match="EMBEDDING_TRITON_URL: .*us-east-1"):
        load_settings(EmbeddingSettings, "EMBEDDING", triton)
    assert KycTierSettings.RESIDENT_ENDPOINTS == ("database_url",)


def test_host_of() -> None:
    assert residency.host_of("sqlite:///x.db") is None
    assert residency.host_of("triton:8001") == "triton"
    assert residency.host_of("postgresql://u:p@H.example:5432/db") == "h.example"


def face_match_production(tmp_path: Path, **extra: str) -> dict[str, str]:
    key = "k" * 32
    return {
        "FACE_MATCH_DATABASE_URL": f"sqlite:///{tmp_path}/fm.db",
        "FACE_MATCH_ENVIRONMENT": "production",
        "FACE_MATCH_DATA_REGION": "id-jkt-1",
        "FACE_MATCH_UPLOAD_SIGNING_KEY": key,
        "FACE_MATCH_CALLBACK_SIGNING_KEY": key,
        "FACE_MATCH_OAUTH_CLIENT_PEPPER": key,
        "FACE_MATCH_OAUTH_SIGNING_KEYS": '{"primary": "a", "keys": {}}',
        "FACE_MATCH_STORAGE": "s3",
        "FACE_MATCH_S3_BUCKET": "uploads",
        **{f"FACE_MATCH_{k}": v for k, v in extra.items()},
    }


def load_face_match(environ: dict[str, str]) -> FaceMatchSettings:
    return load_settings(FaceMatchSettings, "FACE_MATCH", environ)


def test_production_refuses_a_bucket_outside_the_allowed_regions(tmp_path: Path) -> None:
    # The bucket in Jakarta, by the platform's name or AWS's: starts.
    assert load_face_match(face_match_production(tmp_path)).s3_region == "id-jkt-1"
    aws = face_match_production(tmp_path, S3_REGION="ap-southeast-3")
    assert load_face_match(aws).s3_region == "ap-southeast-3"
    # A bucket in Singapore, or an S3 endpoint there, is refused.
    with pytest.raises(SettingsError, match="FACE_MATCH_S3_REGION: ap-southeast-1 is outside"):
        load_face_match(face_match_production(tmp_path, S3_REGION="ap-southeast-1"))
    endpoint = "https://s3.ap-southeast-1.amazonaws.com"
    with pytest.raises(SettingsError, match="FACE_MATCH_S3_ENDPOINT_URL: .*ap-southeast-1"):
        load_face_match(face_match_production(tmp_path, S3_ENDPOINT_URL=endpoint))
    # An S3-compatible store of our own must be declared in an allowed region.
    minio = "https://minio.example.net:9000"
    with pytest.raises(SettingsError, match="region of minio.example.net is not declared"):
        load_face_match(face_match_production(tmp_path, S3_ENDPOINT_URL=minio))
    declared = face_match_production(
        tmp_path, S3_ENDPOINT_URL=minio, ENDPOINT_REGIONS="minio.example.net=id-jkt-1"
    )
    assert load_face_match(declared).s3_endpoint_url == minio
    # The local bucket is a directory of the service: no bucket region applies.
    local = face_match_production(
        tmp_path,
        STORAGE="local",
        BUCKET_DIR=str(tmp_path),
        S3_REGION="ap-southeast-1",
        KEK_KEYRING='{"primary": "k1", "keys": {"k1": "' + "A" * 44 + '"}}',
    )
    assert load_face_match(local).storage == "local"
    # Outside production nothing is refused.
    development = face_match_production(tmp_path, S3_REGION="ap-southeast-1")
    del development["FACE_MATCH_ENVIRONMENT"]
    assert load_face_match(development).s3_region == "ap-southeast-1"


def test_production_refuses_key_encryption_keys_outside_the_allowed_regions(
    tmp_path: Path,
) -> None:
    base = {
        "MATCHING_DATABASE_URL": f"sqlite:///{tmp_path}/m.db",
        "MATCHING_ENVIRONMENT": "production",
        "MATCHING_DATA_REGION": "id-jkt-1",
        "MATCHING_KEK_KEYRING": '{"primary": "k1", "keys": {"k1": "' + "A" * 44 + '"}}',
    }
    # The mounted keyring: the service's own region.
    assert load_settings(MatchingSettings, "MATCHING", base).kms_region == ""
    foreign = {**base, "MATCHING_KMS_REGION": "us-east-1"}
    with pytest.raises(SettingsError, match="MATCHING_KMS_REGION: us-east-1 is outside"):
        load_settings(MatchingSettings, "MATCHING", foreign)
    dr = {
        **base,
        "MATCHING_KMS_REGION": "id-sby-1",
        "MATCHING_ALLOWED_REGIONS": "id-jkt-1,id-sby-1",
    }
    assert load_settings(MatchingSettings, "MATCHING", dr).kms_region == "id-sby-1"
    assert KycTierSettings.RESIDENT_REGIONS == ("kms_region",)
