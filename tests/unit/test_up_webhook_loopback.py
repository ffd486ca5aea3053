"""`identity up` lets kyc-tier post webhooks, and face-match post callbacks, to
a receiver on this machine in development, and leaves the settings to the
operator otherwise."""

from __future__ import annotations

import argparse
from pathlib import Path

from identity_cli.up_config import load_all_settings, mesh_environment


def _args(tmp_path: Path) -> argparse.Namespace:
    return argparse.Namespace(
        host="127.0.0.1", data_dir=str(tmp_path), database_url=f"sqlite:///{tmp_path / 'i.db'}"
    )


def test_development_allows_loopback_webhooks(tmp_path: Path) -> None:
    env = mesh_environment(_args(tmp_path), {})
    assert env["KYC_TIER_WEBHOOK_ALLOW_LOOPBACK"] == "true"
    loaded, _ = load_all_settings(env)
    assert loaded["kyc-tier"].webhook_allow_loopback is True


def test_the_operator_and_production_decide(tmp_path: Path) -> None:
    chosen = mesh_environment(_args(tmp_path), {"KYC_TIER_WEBHOOK_ALLOW_LOOPBACK": "false"})
    assert chosen["KYC_TIER_WEBHOOK_ALLOW_LOOPBACK"] == "false"
    production = mesh_environment(_args(tmp_path), {"KYC_TIER_ENVIRONMENT": "production"})
    assert "KYC_TIER_WEBHOOK_ALLOW_LOOPBACK" not in production


def test_development_allows_loopback_face_match_callbacks(tmp_path: Path) -> None:
    env = mesh_environment(_args(tmp_path), {})
    assert env["FACE_MATCH_CALLBACK_ALLOW_LOOPBACK"] == "true"
    loaded, _ = load_all_settings(env)
    assert loaded["face-match"].callback_allow_loopback is True


def test_the_operator_and_production_decide_face_match_callbacks(tmp_path: Path) -> None:
    chosen = mesh_environment(_args(tmp_path), {"FACE_MATCH_CALLBACK_ALLOW_LOOPBACK": "false"})
    assert chosen["FACE_MATCH_CALLBACK_ALLOW_LOOPBACK"] == "false"
    production = mesh_environment(_args(tmp_path), {"FACE_MATCH_ENVIRONMENT": "production"})
    assert "FACE_MATCH_CALLBACK_ALLOW_LOOPBACK" not in production
