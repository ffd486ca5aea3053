"""`identity up --prometheus`: what it asks of the environment and the
Prometheus configuration it writes (the run itself: tests/e2e/test_prometheus_mesh.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from identity_cli import prometheus
from identity_cli.errors import CliError


def test_every_component_gets_a_metrics_port_unless_the_environment_names_one() -> None:
    env = prometheus.metrics_environment({"GATEWAY_METRICS_PORT": "9999"})
    assert "GATEWAY_METRICS_PORT" not in env
    assert env["CAPTURE_QUALITY_METRICS_PORT"] == str(prometheus.METRICS_BASE_PORT)
    assert len(env) == len(prometheus.components()) - 1
    assert len(set(env.values())) == len(env)


def test_the_config_has_one_job_per_component_and_the_projects_rules(tmp_path: Path) -> None:
    env = {f"{prefix}_HOST": "127.0.0.1" for _, prefix in prometheus.components()}
    env.update(prometheus.metrics_environment({}))
    targets = prometheus.targets(env)
    path = prometheus.write_config(tmp_path / "p", targets, prometheus.rule_files(), "2s")
    config = json.loads(path.read_text())
    assert config["global"] == {"scrape_interval": "2s", "evaluation_interval": "2s"}
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert jobs["kyc-tier"] == [f"127.0.0.1:{env['KYC_TIER_METRICS_PORT']}"]
    assert set(jobs) == {name for name, _ in prometheus.components()}
    assert [Path(p).name for p in config["rule_files"]] == ["recording-rules.yml", "alerts.yml"]
    assert (tmp_path / "p").stat().st_mode & 0o077 == 0
    # Prometheus itself accepts it.
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: tools/dev installs Debian's prometheus package"
    checked = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_missing_rules_or_binary_are_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(CliError, match="recording-rules.yml"):
        prometheus.rule_files(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CliError, match="apt-get install prometheus"):
        prometheus.binary()
