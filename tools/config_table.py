#!/usr/bin/env python3
"""Print, or refresh in README.md, the configuration table built from the
settings classes themselves (so the docs cannot drift from the code).

    tools/config_table.py           # print the markdown table
    tools/config_table.py --write   # replace the table between the README markers
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from identity_runtime import mesh
from identity_runtime.settings import describe

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"


def settings_classes() -> list[tuple[str, type, str]]:
    rows = []
    for service in mesh.SERVICES:
        spec = importlib.import_module(f"{service.module}.service").SPEC
        rows.append((service.name, spec.settings_class, spec.env_prefix))
    from gateway.settings import GatewaySettings

    rows.append(("gateway", GatewaySettings, "GATEWAY"))
    return rows


def table() -> str:
    lines = [
        "Every service reads `<PREFIX>_<FIELD>`; the shared fields (HOST, PORT, MAX_MESSAGE_BYTES,",
        "DEFAULT_DEADLINE_SECONDS, SHUTDOWN_GRACE_SECONDS, LOG_LEVEL, LOG_FORMAT, OTLP_ENDPOINT,",
        "ENVIRONMENT) exist for each prefix and are listed once, under capture-quality.",
        "",
        "| variable | type | default | meaning |",
        "|---|---|---|---|",
    ]
    from identity_runtime.settings import ServiceSettings

    shared_fields = {row[0].removeprefix("X_") for row in describe(ServiceSettings, "X")}
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
