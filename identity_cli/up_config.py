"""What `identity up` runs: the environment of every child, their settings
loaded (and so checked) before anything starts, and what the banner says
about them.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from identity_cli.common import data_dir, database_url
from identity_runtime import mesh

if TYPE_CHECKING:
    from services.liveness.settings import LivenessSettings


def mesh_environment(args: argparse.Namespace, base: Mapping[str, str]) -> dict[str, str]:
    """The environment every child gets: defaults, then the caller's own variables."""
    from identity_cli.local_secrets import local_settings

    directory = data_dir(args)
    url = database_url(args)
    env: dict[str, str] = {
        "PYTHONUNBUFFERED": "1",
        "GATEWAY_HOST": args.host,
        "GATEWAY_PORT": str(mesh.GATEWAY_DEFAULT_PORT),
    }
    for service in mesh.SERVICES:
        env[f"{service.env_prefix}_HOST"] = args.host
        env[f"{service.env_prefix}_PORT"] = str(service.default_port)
    # Downstream addresses follow the (possibly overridden) ports.
    merged = {**env, **base}
    for service in mesh.SERVICES:
        address = f"{args.host}:{merged[f'{service.env_prefix}_PORT']}"
        env[f"GATEWAY_{service.env_prefix}_ADDRESS"] = address
        for caller in mesh.SERVICES:
            if service.name in caller.calls:
                env[f"{caller.env_prefix}_{service.env_prefix}_ADDRESS"] = address
    # Presigned upload URLs point at the gateway, which serves the local bucket.
    env["FACE_MATCH_PUBLIC_BASE_URL"] = f"http://{args.host}:{merged['GATEWAY_PORT']}"
    env.update(local_settings(directory, url, hosts=(args.host,)))
    env.update(base)
    # The one-machine run may post webhooks and Face Match callbacks to a
    # receiver on this machine (production refuses it; private and link-local
    # targets stay refused).
    if env.get("KYC_TIER_ENVIRONMENT", "development") == "development":
        env.setdefault("KYC_TIER_WEBHOOK_ALLOW_LOOPBACK", "true")
        # The web SDK's demo page, with the local organisation's key on the server side.
        env.setdefault("GATEWAY_SDK_DEMO", "true")
        env.setdefault(
            "GATEWAY_SDK_DEMO_API_KEY_FILE", str(directory / "secrets" / "local-api-key")
        )
    if env.get("FACE_MATCH_ENVIRONMENT", "development") == "development":
        env.setdefault("FACE_MATCH_CALLBACK_ALLOW_LOOPBACK", "true")
    return env


def load_all_settings(env: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Every child's settings by name, as the children will read them, and
    every problem (so a bad setting stops `up` before anything starts)."""
    from gateway.settings import ENV_PREFIX, GatewaySettings
    from identity_runtime.settings import SettingsError, load_settings

    classes = [
        (s.name, importlib.import_module(f"{s.module}.service").SPEC.settings_class, s.env_prefix)
        for s in mesh.SERVICES
    ]
    loaded: dict[str, Any] = {}
    problems: list[str] = []
    for name, settings_class, prefix in [*classes, ("gateway", GatewaySettings, ENV_PREFIX)]:
        try:
            loaded[name] = load_settings(settings_class, prefix, env)
        except SettingsError as exc:
            problems.extend(f"{name}: {p}" for p in exc.problems)
    return loaded, problems


def pad_banner_line(liveness: LivenessSettings) -> str:
    """Whether liveness detects presentation attacks: said in the banner, loudly when not."""
    if not liveness.pad_enabled:
        return (
            "WARNING: liveness: NO presentation-attack detection (challenge only): "
            "LIVENESS_PAD_ENABLED=false"
        )
    weights = f"weights in {liveness.pad_model_dir}" if liveness.pad_model_dir else "packaged"
    return f"  liveness PAD     active: {', '.join(liveness.pad_models)} ({weights})"


def listeners(env: Mapping[str, str]) -> list[tuple[str, str, int]]:
    rows = [
        (s.name, env[f"{s.env_prefix}_HOST"], int(env[f"{s.env_prefix}_PORT"]))
        for s in mesh.SERVICES
    ]
    rows.append(("gateway", env["GATEWAY_HOST"], int(env["GATEWAY_PORT"])))
    return rows
