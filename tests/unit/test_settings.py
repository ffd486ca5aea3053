"""Typed settings: every problem reported at once, secrets never echoed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from identity_runtime.settings import (
    ServiceSettings,
    SettingsError,
    describe,
    load_settings,
    setting,
)
from services.kyc_tier.settings import KycTierSettings


@dataclass(frozen=True, kw_only=True)
class ExampleSettings(ServiceSettings):
    database_url: str = setting(help="where the data lives", secret=True)
    threads: int = setting(2, "worker threads")
    model_dir: Path | None = setting(None, "models")
    backends: tuple[str, ...] = setting(("onnxruntime",), "backends")
    mode: Literal["fast", "exact"] = setting("exact", "index kind")
    strict: bool = setting(False, "strict mode")


def test_values_are_parsed_to_their_types() -> None:
    settings = load_settings(
        ExampleSettings,
        "EX",
        {
            "EX_DATABASE_URL": "sqlite://",
            "EX_THREADS": "4",
            "EX_MODEL_DIR": "/models",
            "EX_BACKENDS": "onnxruntime, triton",
            "EX_MODE": "fast",
            "EX_STRICT": "yes",
            "EX_PORT": "5000",
        },
    )
    assert settings.threads == 4 and settings.port == 5000
    assert settings.model_dir == Path("/models")
    assert settings.backends == ("onnxruntime", "triton")
    assert settings.mode == "fast" and settings.strict is True


def test_every_problem_is_reported_and_secrets_are_not_echoed() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            ExampleSettings,
            "EX",
            {"EX_THREADS": "many", "EX_MODE": "slow", "EX_STRICT": "perhaps", "EX_PORT": "70000"},
        )
    text = str(caught.value)
    assert "EX_DATABASE_URL is required (where the data lives)" in text
    assert "EX_THREADS='many'" in text
    assert "EX_MODE='slow': must be one of fast, exact" in text
    assert "EX_STRICT='perhaps': must be true or false" in text
    # Range checks run once the types parse: fix the types first.
    assert len(caught.value.problems) == 4


def test_range_validation_runs_after_parsing() -> None:
    with pytest.raises(SettingsError, match="EX_PORT: 70000 is not a TCP port"):
        load_settings(ExampleSettings, "EX", {"EX_DATABASE_URL": "sqlite://", "EX_PORT": "70000"})


def test_secret_values_never_appear_in_errors() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            KycTierSettings,
            "KYC_TIER",
            {
                "KYC_TIER_DATABASE_URL": "sqlite://",
                "KYC_TIER_API_KEY_PEPPER": "short-secret",
                "KYC_TIER_PII_INDEX_KEY": "p" * 40,
                "KYC_TIER_KEK_KEYRING": "{}",
            },
        )
    assert "KYC_TIER_API_KEY_PEPPER: must be at least 32 characters" in str(caught.value)
    assert "short-secret" not in str(caught.value)


def test_describe_lists_variables_for_the_docs() -> None:
    rows = {row[0]: row for row in describe(KycTierSettings, "KYC_TIER")}
    assert rows["KYC_TIER_DATABASE_URL"][2] == "(required)"
    assert rows["KYC_TIER_PORT"][2] == "0"
