"""`identity up --prometheus`: a real Prometheus (Debian's `prometheus`)
scraping the local mesh, with the project's recording rules and alerts.

Every service and the gateway serve their metrics on `<PREFIX>_METRICS_PORT`
(9464 and up unless the environment says otherwise); this module writes a
prometheus.yml with one job per component (job = the component's name, as
the rules and the chart's PodMonitor have it) and the rule files of
deploy/prometheus, and runs Prometheus on it with its data in the data
directory. Nothing is downloaded: the binary is the one on PATH
(`apt-get install prometheus`; tools/dev installs it for the tests).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from identity_cli.errors import CliError
from identity_runtime import mesh

METRICS_BASE_PORT = 9464
DEFAULT_PORT = 9090
DEFAULT_INTERVAL = "5s"
RULES_DIR = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
RULE_FILES = ("recording-rules.yml", "alerts.yml")


def components() -> list[tuple[str, str]]:
    """(name, environment prefix) of every service and the gateway."""
    return [(s.name, s.env_prefix) for s in mesh.SERVICES] + [("gateway", "GATEWAY")]


def metrics_environment(base: Mapping[str, str]) -> dict[str, str]:
    """`<PREFIX>_METRICS_PORT` for every component the caller did not set."""
    env: dict[str, str] = {}
    for index, (_name, prefix) in enumerate(components()):
        variable = f"{prefix}_METRICS_PORT"
        if not base.get(variable):
            env[variable] = str(METRICS_BASE_PORT + index)
    return env


def targets(env: Mapping[str, str]) -> dict[str, str]:
    """Component name -> host:port of its metrics."""
    return {
        name: f"{env[f'{prefix}_HOST']}:{env[f'{prefix}_METRICS_PORT']}"
        for name, prefix in components()
    }


def rule_files(rules_dir: Path = RULES_DIR) -> list[Path]:
    files = [rules_dir / name for name in RULE_FILES]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise CliError(f"the Prometheus rules are missing: {', '.join(missing)}")
    return files


def write_config(
    directory: Path,
    scrape_targets: Mapping[str, str],
    rules: list[Path],
    interval: str = DEFAULT_INTERVAL,
) -> Path:
    """prometheus.yml in `directory`: one job per component, the rules loaded."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(path) for path in rules],
        "scrape_configs": [
            {"job_name": name, "metrics_path": "/metrics", "static_configs": [{"targets": [t]}]}
            for name, t in scrape_targets.items()
        ],
    }
    path = directory / "prometheus.yml"
    # JSON is YAML: Prometheus reads it as its configuration.
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def binary() -> str:
    found = shutil.which("prometheus")
    if not found:
        raise CliError(
            "--prometheus runs Debian's prometheus, which is not installed: "
            "apt-get install prometheus"
        )
    return found


def spawn(
    config: Path, directory: Path, host: str, port: int, log: BinaryIO
) -> subprocess.Popen[bytes]:
    """Prometheus on host:port with its TSDB under `directory`."""
    return subprocess.Popen(
        [
            binary(),
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address={host}:{port}",
            "--storage.tsdb.retention.time=2d",
            "--web.enable-lifecycle",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
