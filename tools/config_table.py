#!/usr/bin/env python3
"""Print, or refresh in README.md, the configuration table built from the
settings classes themselves (so the docs cannot drift from the code).

    tools/config_table.py           # print the markdown table
    tools/config_table.py --write   # replace the table between the README markers
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

from identity_runtime import mesh
from identity_runtime.settings import describe

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"


# Variables read outside the services' settings classes: by the `identity`
# command, the tools and the tests. tests/unit/test_docs.py checks that every
# variable the code reads is in the table. (variable, read by, default, meaning)
OTHER_VARIABLES = (
    (
        "IDENTITY_DATA_DIR",
        "`identity`",
        "`./.identity`",
        "Data directory of the one-machine run: embedded database, local secrets, logs "
        "(`logs/<service>.log`, 0600 in a 0700 directory; `--data-dir` wins)",
    ),
    (
        "IDENTITY_DATABASE_URL",
        "`identity`",
        "SQLite in the data dir",
        "Database of `identity up`, `migrate` and the operator commands (`--database-url` wins)",
    ),
    (
        "AUDIT_CHECKPOINT_PUBLIC_KEY_FILE",
        "`identity audit verify`",
        "`AUDIT_CHECKPOINT_KEY_FILE`, else the data dir's",
        "Ed25519 public key (PEM) that checks the audit checkpoints "
        "(`--checkpoint-public-key` wins)",
    ),
    (
        "IDENTITY_MIGRATE_LOCK_TIMEOUT",
        "`identity migrate` on PostgreSQL (the chart's migrations Job sets it)",
        "`5s`",
        "`lock_timeout` of each migration: an `ALTER` that waits longer for a lock fails "
        "instead of queueing every query behind it (docs/migrations.md)",
    ),
    (
        "IDENTITY_MIGRATE_STATEMENT_TIMEOUT",
        "`identity migrate` on PostgreSQL (the chart's migrations Job sets it)",
        "`10min`",
        "`statement_timeout` of each migration (docs/migrations.md)",
    ),
    (
        "IDENTITY_HOST",
        "`identity up`",
        "`127.0.0.1`",
        "Interface every service and the gateway listen on (`--host` wins)",
    ),
    (
        "IDENTITY_PYTHON",
        "`tools/dev`, `tools/lock`, `tools/envs/triton.sh`",
        "`python3.11`",
        "The Python 3.11 interpreter to build the virtual environments with "
        "(another version is refused)",
    ),
    (
        "IDENTITY_TEST_POSTGRES_URL",
        "tests, `tools/dev test`, `tools/bench`",
        "`postgresql://postgres@127.0.0.1:5432/test`",
        "PostgreSQL of the tests (a scratch schema each); `tools/dev test` starts the server "
        "and creates the database when missing",
    ),
    (
        "IDENTITY_TEST_REDIS_URL",
        "tests",
        "`redis://127.0.0.1:6379/0`",
        "Redis of the gateway's shared rate-limit tests (`tools/dev test` starts it)",
    ),
    (
        "CHROMIUM_PATH",
        "browser tests",
        "`/usr/bin/chromium`",
        "Debian's chromium, which the browser tests drive through playwright-core "
        "(`tools/dev test` installs it; no browser is ever downloaded)",
    ),
    (
        "BUF_BREAKING_AGAINST",
        "`.ci/run`",
        "`HEAD~1`",
        "Git revision the contracts must stay wire-compatible with (`buf breaking`)",
    ),
    (
        "BENCH_LOG_LEVEL",
        "`tools/bench/verify_throughput.py`",
        "`INFO`",
        "Log level of the services the benchmark starts",
    ),
    (
        "BENCH_PROFILE_DIR",
        "`tools/bench/sampler/sitecustomize.py` (`step_up_throughput.py --profile` sets it)",
        "unset",
        "Directory the CPU sampler of the benchmark's mesh processes writes its stacks to; "
        "unset, nothing is sampled",
    ),
    (
        "ORT_DISABLE_TELEMETRY",
        "ONNX Runtime (set by `identity_inference` unless given)",
        "`1`",
        "ONNX Runtime's telemetry client, which writes a session file into the temporary "
        "directory of every process that imports it: off unless you set `0`",
    ),
    (
        "CI",
        "set by `.ci/run`",
        "unset",
        "pytest prints full assertion output; nothing in the project behaves differently "
        "(a missing server or test file fails everywhere)",
    ),
)


def settings_classes() -> list[tuple[str, type, str]]:
    rows = []
    for service in mesh.SERVICES:
        spec = importlib.import_module(f"{service.module}.service").SPEC
        rows.append((service.name, spec.settings_class, spec.env_prefix))
    from gateway.settings import GatewaySettings

    rows.append(("gateway", GatewaySettings, "GATEWAY"))
    return rows


def shared_settings_fields() -> set[str]:
    """The fields every service's settings have (read as `<PREFIX>_<FIELD>`)."""
    from identity_runtime.settings import ServiceSettings

    return {row[0].removeprefix("X_") for row in describe(ServiceSettings, "X")}


def table() -> str:
    shared_fields = shared_settings_fields()
    lines = [
        *textwrap.wrap(
            "Every service reads `<PREFIX>_<FIELD>`; the shared fields "
            f"({', '.join(sorted(shared_fields))}) exist for each prefix and are listed "
            "once, under capture-quality.",
            width=96,
        ),
        "",
        "| variable | type | default | meaning |",
        "|---|---|---|---|",
    ]
    from identity_runtime.settings import ServiceSettings

    first = True
    for name, cls, prefix in settings_classes():
        rows = describe(cls, prefix)
        if issubclass(cls, ServiceSettings) and not first:
            rows = [row for row in rows if row[0].removeprefix(prefix + "_") not in shared_fields]
        first = False
        lines.append(f"| **{name}** | | | |")
        for variable, type_name, default, help_text in rows:
            cells = (f"`{variable}`", type_name.replace("pathlib.", ""), f"`{default}`", help_text)
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    lines += [
        "",
        "Read outside the services' settings: by the `identity` command, the tools and the tests.",
        "",
        "| variable | read by | default | meaning |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{name}` | {who} | {default} | {meaning} |"
        for name, who, default, meaning in OTHER_VARIABLES
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    rendered = table()
    if "--write" not in sys.argv[1:]:
        print(rendered, end="")
        return 0
    text = README.read_text()
    if START not in text or END not in text:
        print(f"README.md lacks the {START} / {END} markers", file=sys.stderr)
        return 1
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{rendered}{END}{tail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
