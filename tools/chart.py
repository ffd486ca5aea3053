#!/usr/bin/env python3
"""Keep the Helm chart in step with the code it deploys.

The chart never guesses a setting name or a call-graph edge: it reads them
from `charts/identity-platform/files/mesh.json`, which this tool generates
from the code itself (libs/identity_runtime/mesh.py for the services, ports
and call graph; each service's settings dataclass for its settings;
pyproject.toml for the console scripts). `SETTINGS.md` next to the chart is
the same catalogue for humans. The Prometheus rules it ships as a
PrometheusRule are copies of deploy/prometheus/*.yml (the plain files are
the source), in `files/prometheus/`.

    tools/chart.py generate   rewrite files/mesh.json and SETTINGS.md
    tools/chart.py check      exit 1 when either is stale (tests run this too)

A component whose settings class declares no field of its own yet (the work
that adds them has not landed) is marked `"declared": false`; the chart then
accepts the provisional setting names its values use, and
tests/test_chart_settings.py warns about each one. As soon as the class
declares fields, every name the chart sets must exist.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "identity-platform"
CATALOGUE = CHART / "files" / "mesh.json"
SETTINGS_DOC = CHART / "SETTINGS.md"
PROMETHEUS_RULES = ROOT / "deploy" / "prometheus"

# Every gRPC service listens on this port in a container (mesh.py's default
# ports are for the one-machine run, where they must differ).
GRPC_CONTAINER_PORT = 50051
GATEWAY_PREFIX = "GATEWAY"
# `identity migrate` reads the database URL from here (identity_cli.common).
MIGRATIONS_ENV = "IDENTITY_DATABASE_URL"

for path in (ROOT, ROOT / "libs"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


@dataclass(frozen=True)
class Component:
    """One workload the chart deploys from the project's image."""

    name: str
    # "grpc" (standard gRPC health) or "http" (the gateway).
    protocol: str
    env_prefix: str
    container_port: int
    calls: tuple[str, ...]
    # The console script the container runs.
    command: str
    # The settings dataclass, or None while it does not exist yet.
    settings_class: type | None

    @property
    def declared(self) -> bool:
        """Whether the settings class declares fields of its own yet."""
        return bool(own_fields(self.settings_class)) if self.settings_class else False

    def settings(self) -> dict[str, dict[str, typing.Any]]:
        if self.settings_class is None:
            return {}
        hints = typing.get_type_hints(self.settings_class)
        result = {}
        for field in dataclasses.fields(self.settings_class):
            name = f"{self.env_prefix}_{field.name}".upper()
            required = (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            )
            secret = bool(field.metadata.get("secret"))
            kind, choices = _kind(hints[field.name])
            default = None
            if not required and not secret:
                default = (
                    field.default_factory()
                    if field.default_factory is not dataclasses.MISSING
                    else field.default
                )
                default = list(default) if isinstance(default, tuple) else default
                default = str(default) if kind == "path" else default
            result[name] = {
                "type": kind,
                "choices": choices,
                "required": required,
                "secret": secret,
                "default": default,
                "help": field.metadata.get("help", ""),
            }
        return result


def _kind(annotation: typing.Any) -> tuple[str, list[str] | None]:
    """(type name, allowed values) of a setting, as identity_runtime.settings parses it."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        kind, choices = _kind(options[0])
        return f"{kind} (optional)", choices
    if origin is typing.Literal:
        return "str", [str(a) for a in typing.get_args(annotation)]
    if origin is tuple:
        return f"list of {_kind(typing.get_args(annotation)[0])[0]} (comma-separated)", None
    names = {bool: "bool", int: "int", float: "float", str: "str", Path: "path"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation))), None


def own_fields(cls: type | None) -> list[str]:
    """Fields a settings class adds to the shared ServiceSettings (all of
    them for a class that does not derive from it)."""
    if cls is None:
        return []
    from identity_runtime.settings import ServiceSettings

    shared = (
        {f.name for f in dataclasses.fields(ServiceSettings)}
        if issubclass(cls, ServiceSettings)
        else set()
    )
    return [f.name for f in dataclasses.fields(cls) if f.name not in shared]


def console_scripts() -> dict[str, str]:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return dict(tomllib.load(handle)["project"]["scripts"])


def gateway_settings_class() -> type | None:
    """The gateway's settings dataclass, once gateway/settings.py exists."""
    try:
        module = importlib.import_module("gateway.settings")
    except ModuleNotFoundError as exc:
        if exc.name in ("gateway.settings",):
            return None
        raise
    candidates = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and dataclasses.is_dataclass(value)
        and value.__module__ == module.__name__
        and value.__name__.endswith("Settings")
    ]
    if len(candidates) > 1:
        candidates = [c for c in candidates if c.__name__ == "GatewaySettings"]
    if len(candidates) != 1:
        raise SystemExit("gateway/settings.py: expected one *Settings dataclass (GatewaySettings)")
    prefix = getattr(module, "ENV_PREFIX", GATEWAY_PREFIX)
    if prefix != GATEWAY_PREFIX:
        raise SystemExit(
            f"gateway/settings.py: ENV_PREFIX is {prefix!r}, the chart expects {GATEWAY_PREFIX!r}"
        )
    return candidates[0]


def service_settings_class(service: typing.Any) -> type:
    """The ServiceSettings dataclass declared in services/<package>/settings.py
    (read from the settings module alone: building a service's core is not
    needed to know its settings)."""
    from identity_runtime.settings import ServiceSettings

    module = importlib.import_module(f"{service.module}.settings")
    candidates = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, ServiceSettings)
        and dataclasses.is_dataclass(value)
        and value.__module__ == module.__name__
    ]
    if len(candidates) != 1:
        raise SystemExit(
            f"{module.__name__}: expected one ServiceSettings dataclass, found {len(candidates)}"
        )
    return candidates[0]


def components() -> list[Component]:
    """The mesh services (in mesh.py order), then the gateway."""
    from identity_runtime import mesh

    scripts = console_scripts()
    result = []
    for service in mesh.SERVICES:
        command = f"identity-{service.name}"
        expected = f"{service.module}.__main__:main"
        if scripts.get(command) != expected:
            raise SystemExit(f"pyproject.toml: console script {command} should be {expected!r}")
        result.append(
            Component(
                name=service.name,
                protocol="grpc",
                env_prefix=service.env_prefix,
                container_port=GRPC_CONTAINER_PORT,
                calls=tuple(service.calls),
                command=command,
                settings_class=service_settings_class(service),
            )
        )
    if "identity-gateway" not in scripts:
        raise SystemExit("pyproject.toml: console script identity-gateway is missing")
    result.append(
        Component(
            name="gateway",
            protocol="http",
            env_prefix=GATEWAY_PREFIX,
            container_port=mesh.GATEWAY_DEFAULT_PORT,
            calls=tuple(mesh.GATEWAY_CALLS),
            command="identity-gateway",
            settings_class=gateway_settings_class(),
        )
    )
    return result


def catalogue() -> dict[str, typing.Any]:
    return {
        "_comment": (
            "Generated by tools/chart.py from mesh.py, the settings classes and pyproject.toml. "
            "Do not edit."
        ),
        "components": {
            c.name: {
                "protocol": c.protocol,
                "prefix": c.env_prefix,
                "containerPort": c.container_port,
                "calls": list(c.calls),
                "command": c.command,
                "declared": c.declared,
                "settings": c.settings(),
            }
            for c in components()
        },
        "migrations": {"command": ["identity", "migrate"], "databaseUrlEnv": MIGRATIONS_ENV},
    }


def render_catalogue() -> str:
    return json.dumps(catalogue(), indent=2, sort_keys=True) + "\n"


def render_settings_doc() -> str:
    lines = [
        "# Settings of every component",
        "",
        "Generated by `tools/chart.py generate` from the settings classes; do not edit.",
        "Each variable is `<PREFIX>_<FIELD>`. In the chart's values a component's `config`",
        "and `secretEnv` maps take the field part only (`DATABASE_POOL_SIZE`, not",
        "`KYC_TIER_DATABASE_POOL_SIZE`). Secret settings are only accepted through",
        "`secretEnv` (a reference to a Kubernetes Secret), never in `config`.",
        "",
    ]
    for component in components():
        lines.append(f"## {component.name} (`{component.env_prefix}_*`, `{component.command}`)")
        lines.append("")
        if not component.declared:
            lines.append(
                "Its settings class declares no settings of its own yet; "
                "the chart accepts the provisional names in values.yaml until it does."
            )
            lines.append("")
        settings = component.settings()
        if not settings:
            continue
        lines.append("| variable | type | default | required | secret | meaning |")
        lines.append("|---|---|---|---|---|---|")
        for name, info in settings.items():
            default = "" if info["default"] is None else f"`{json.dumps(info['default'])}`"
            help_text = info["help"].replace("|", "\\|")
            type_name = (
                info["type"]
                if not info["choices"]
                else "one of " + ", ".join(f"`{c}`" for c in info["choices"])
            )
            lines.append(
                f"| `{name}` | {type_name} | {default} | {'yes' if info['required'] else ''} | "
                f"{'yes' if info['secret'] else ''} | {help_text} |"
            )
        lines.append("")
    lines.append("## migrations (`identity migrate`, the pre-install/pre-upgrade hook)")
    lines.append("")
    lines.append("| variable | type | default | required | secret | meaning |")
    lines.append("|---|---|---|---|---|---|")
    lines.append(
        f"| `{MIGRATIONS_ENV}` | str | | yes | yes | SQLAlchemy URL of the database to migrate |"
    )
    lines.append("")
    return "\n".join(lines)


def outputs() -> dict[Path, str]:
    rules = {
        CHART / "files" / "prometheus" / source.name: source.read_text()
        for source in sorted(PROMETHEUS_RULES.glob("*.yml"))
    }
    return {CATALOGUE: render_catalogue(), SETTINGS_DOC: render_settings_doc(), **rules}


def stale() -> list[Path]:
    return [
        path for path, text in outputs().items() if not path.exists() or path.read_text() != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["generate", "check"])
    args = parser.parse_args(argv)
    if args.command == "generate":
        for path, text in outputs().items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    paths = stale()
    for path in paths:
        print(f"{path.relative_to(ROOT)} is stale: run tools/chart.py generate", file=sys.stderr)
    return 1 if paths else 0


if __name__ == "__main__":
    sys.exit(main())
