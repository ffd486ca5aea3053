"""Typed settings from environment variables, failing fast with a clear message.

A settings class is a frozen dataclass; each field is read from
`<PREFIX>_<FIELD>` (upper case). Fields without a default are required.
Every problem is reported at once, so a misconfigured deployment fails at
start-up with one message that names each variable:

    @dataclass(frozen=True, kw_only=True)
    class MatchingSettings(ServiceSettings):
        threshold: float = setting(0.45, "Default cosine threshold")

    settings = load_settings(MatchingSettings, "MATCHING")
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args, get_origin

from identity_runtime.mesh import MeshService, default_address

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(Exception):
    """One or more settings are missing or malformed."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def setting(default: Any = dataclasses.MISSING, help: str = "", *, secret: bool = False) -> Any:
    """Declare a setting with its documentation; secrets are never printed."""
    metadata = {"help": help, "secret": secret}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for sequence defaults")
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def env_name(prefix: str, field_name: str) -> str:
    return f"{prefix}_{field_name}".upper() if prefix else field_name.upper()


def _parse(raw: str, annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if raw == "":
            return None
        return _parse(raw, options[0])
    if origin is Literal:
        allowed = get_args(annotation)
        if raw not in allowed:
            raise ValueError(f"must be one of {', '.join(map(str, allowed))}")
        return raw
    if origin is tuple:
        (item_type, *_rest) = get_args(annotation)
        return tuple(_parse(part.strip(), item_type) for part in raw.split(",") if part.strip())
    if annotation is bool:
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError("must be true or false")
    if annotation is int:
        return int(raw)
    if annotation is float:
        return float(raw)
    if annotation is Path:
        return Path(raw).expanduser()
    if annotation is str:
        return raw
    raise TypeError(f"unsupported setting type {annotation!r}")


def load_settings(cls: type[T], prefix: str, environ: Mapping[str, str] | None = None) -> T:
    """Build `cls` from the environment; raise SettingsError naming every problem."""
    environ = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for field in dataclasses.fields(cls):
        name = env_name(prefix, field.name)
        annotation = hints[field.name]
        if name in environ:
            try:
                values[field.name] = _parse(environ[name], annotation)
            except (ValueError, TypeError) as exc:
                shown = "<secret>" if field.metadata.get("secret") else repr(environ[name])
                problems.append(f"{name}={shown}: {exc}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            help_text = field.metadata.get("help", "")
            problems.append(f"{name} is required" + (f" ({help_text})" if help_text else ""))
    if problems:
        raise SettingsError(problems)
    instance = cls(**values)
    validate = getattr(instance, "validate", None)
    if validate is not None:
        extra = validate()
        if extra:
            raise SettingsError(
                [f"{env_name(prefix, field)}: {message}" for field, message in extra]
            )
    return instance


def describe(cls: type, prefix: str) -> list[tuple[str, str, str, str]]:
    """(variable, type, default, help) rows, for docs and `identity config`."""
    hints = typing.get_type_hints(cls)
    rows = []
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            default = "" if field.metadata.get("secret") else repr(field.default)
        else:
            default = "(required)"
        type_name = getattr(hints[field.name], "__name__", str(hints[field.name]))
        rows.append(
            (
                env_name(prefix, field.name),
                type_name.replace("typing.", ""),
                default,
                field.metadata.get("help", ""),
            )
        )
    return rows


def address_setting(service: MeshService) -> Any:
    """Where a caller reaches `service` (host:port); the one-machine port by default."""
    return setting(default_address(service), f"host:port of {service.name}")


def kms_region_setting() -> Any:
    """Where the key-encryption keys live (a service naming it in RESIDENT_REGIONS)."""
    return setting(
        "",
        "Region of the key-encryption keys (a cloud KMS/HSM); empty = this service's own "
        "(the keyring mounted from a Secret); production refuses one outside ALLOWED_REGIONS",
    )


def inline_secret_setting(what: str) -> Any:
    """The inline twin of a `<name>_file` secret setting (declared right after it):
    the same `what` given as text, for development only; never printed."""
    return setting("", f"The same {what} inline (development only)", secret=True)


def addresses(settings: object, services: Iterable[MeshService]) -> dict[str, str]:
    """Proto package -> host:port, from the `<package>_address` settings."""
    return {s.package: getattr(settings, f"{s.package}_address") for s in services}


def keyring_missing(settings: object, name: str, prefix: str) -> list[tuple[str, str]]:
    """The problem of a keyring given neither as a file (`<name>_file`) nor inline
    (`<name>`), for `validate`; `prefix` is the settings' environment prefix."""
    if getattr(settings, f"{name}_file") is None and not getattr(settings, name).strip():
        variable = env_name(prefix, name)
        return [(f"{name}_file", f"set {variable}_FILE (or {variable})")]
    return []


DatabaseUrl = str
MIB = 1024 * 1024


@dataclasses.dataclass(frozen=True, kw_only=True)
class DatabaseSettings:
    """The settings of a service that keeps tables in its own database.

    Mixed in before the service's base so that these two fields follow the
    shared ones: `class AuditSettings(DatabaseSettings, ServiceSettings)`.
    The service still names `database_url` in RESIDENT_ENDPOINTS.
    """

    database_url: DatabaseUrl = setting(
        help="SQLAlchemy URL: postgresql://... or sqlite:///path", secret=True
    )
    database_pool_size: int = setting(
        5, "Most connections per process to PostgreSQL (the pool; no overflow beyond it)"
    )


def retention_batch_setting() -> Any:
    """How many rows one transaction of a service's retention sweep deletes."""
    return setting(1000, "Rows deleted per retention-sweep transaction (bounds the longest lock)")


def tcp_port_problem(name: str, port: int | None) -> list[tuple[str, str]]:
    """The problem of a port setting outside 0-65535 (None, no port, is fine)."""
    if port is not None and not 0 <= port <= 65535:
        return [(name, f"{port} is not a TCP port")]
    return []


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProcessSettings:
    """Settings every process of the platform shares, the gRPC services and the
    gateway alike: where it listens, how it stops, logs, traces and exports
    metrics."""

    host: str = setting("127.0.0.1", "Interface to listen on (0.0.0.0 in containers)")
    shutdown_grace_seconds: float = setting(10.0, "Time in-flight calls get on SIGTERM")
    log_level: str = setting("INFO", "Log level (DEBUG, INFO, WARNING, ERROR)")
    log_format: Literal["json", "console"] = setting(
        "json", "Structured JSON logs, or console for humans"
    )
    otlp_endpoint: str = setting("", "OTLP/gRPC endpoint for traces; empty disables export")
    metrics_port: int | None = setting(
        None,
        "Plaintext port serving Prometheus metrics at /metrics (no personal data, "
        "bounded labels: the gateway's are route templates, never paths); 0 picks a free "
        "one; empty = none",
    )

    def validate(self) -> list[tuple[str, str]]:
        return tcp_port_problem("metrics_port", self.metrics_port)


@dataclasses.dataclass(frozen=True, kw_only=True)
class MeshCallerSettings:
    """How a process calls the services of the mesh (the gateway always, a
    service when it calls others): the key it signs caller tokens with and its
    mutual-TLS certificate. Mixed in before ProcessSettings, so that these
    fields follow its ones."""

    mesh_signing_key_file: Path | None = setting(
        None,
        "Ed25519 private key (PEM) this process signs each call's caller token with "
        "(required by the gateway and by services that call others; its public key is in "
        "the called services' trusted keys)",
    )
    mesh_signing_key: str = inline_secret_setting("signing key")
    mesh_tls: Literal["on", "off"] = setting(
        "on",
        "Mutual TLS on a service's gRPC port and to the services called; off = plaintext "
        "(tests and debugging only: production services refuse it)",
    )
    mesh_tls_cert_file: Path | None = setting(
        None,
        "This process's certificate (PEM), with URI SAN spiffe://identity.local/<service> "
        "(the gateway's: spiffe://identity.local/gateway)",
    )
    mesh_tls_key_file: Path | None = setting(None, "The certificate's private key (PEM)")
    mesh_tls_ca_file: Path | None = setting(
        None, "CA certificate(s) (PEM) every peer's certificate must chain to"
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServiceSettings(MeshCallerSettings, ProcessSettings):
    """Settings every gRPC service shares, read with the service's prefix."""

    port: int = setting(0, "gRPC port; 0 picks a free one (tests)")
    max_message_bytes: int = setting(24 * MIB, "Largest gRPC message accepted or sent")
    default_deadline_seconds: float = setting(10.0, "Deadline applied when the caller sets none")
    worker_threads: int = setting(
        0,
        "Threads of the process's worker pool (asyncio.to_thread: model inference, database "
        "calls); 0 = asyncio's default (cores + 4, at most 32). With ONNX Runtime's intra-op "
        "threads it bounds the cores a service's model work can take at once "
        "(docs/performance.md)",
    )
    environment: Literal["development", "production"] = setting(
        "development", "production refuses unsafe defaults (no PAD model, dev keys)"
    )
    mesh_trusted_keys_file: Path | None = setting(
        None,
        "JSON of the Ed25519 public keys, by issuer, whose caller tokens this service "
        "accepts (required to serve; docs/mesh-security.md)",
    )
    mesh_trusted_keys: str = setting("", "The same trusted-keys document inline")
    health_port: int | None = setting(
        None,
        "Plaintext port serving only grpc.health.v1, for probes that cannot speak "
        "mutual TLS (kubelet); empty = none",
    )
    rate_limit_storage: str = setting(
        "memory://",
        "Counters of the RPCs' declared rate limits: memory:// (one replica) or "
        "redis://host:port[/db] (shared by every replica)",
    )
    data_region: str = setting(
        "",
        "Region this service and its stores run in (e.g. id-jkt-1); production requires "
        "one of ALLOWED_REGIONS (identity_runtime/residency.py)",
    )
    allowed_regions: tuple[str, ...] = setting(
        ("id-jkt-1",),
        "Indonesian regions personal data may live in (id-jkt-1, plus a disaster-recovery "
        "site such as id-sby-1 or id-btm-1)",
    )
    endpoint_regions: str = setting(
        "",
        "Declared region of each external store this service uses: host=region, "
        "comma-separated (production refuses an undeclared or foreign one)",
    )
    # The settings naming stores that hold personal data (database, object
    # store, KMS, Triton): production refuses them outside ALLOWED_REGIONS.
    RESIDENT_ENDPOINTS: typing.ClassVar[tuple[str, ...]] = ()
    # The settings naming the region of such a store directly (a bucket's, a
    # KMS key's; empty = this service's own region).
    RESIDENT_REGIONS: typing.ClassVar[tuple[str, ...]] = ()

    def resident_stores(self) -> tuple[dict[str, str], dict[str, str]]:
        """(endpoint settings, region settings) of the stores in use."""
        return (
            {name: str(getattr(self, name) or "") for name in self.RESIDENT_ENDPOINTS},
            {name: str(getattr(self, name) or "") for name in self.RESIDENT_REGIONS},
        )

    def validate(self) -> list[tuple[str, str]]:
        from identity_runtime import residency

        endpoints, regions = self.resident_stores()
        problems = residency.problems(
            production=self.environment == "production",
            data_region=self.data_region,
            allowed_regions=self.allowed_regions,
            endpoint_regions=self.endpoint_regions,
            endpoints=endpoints,
            regions=regions,
        )
        problems += tcp_port_problem("port", self.port)
        problems += super().validate()
        if self.max_message_bytes < MIB:
            problems.append(("max_message_bytes", "must be at least 1 MiB"))
        if self.default_deadline_seconds <= 0:
            problems.append(("default_deadline_seconds", "must be positive"))
        if self.worker_threads < 0:
            problems.append(("worker_threads", "must be 0 (asyncio's default) or positive"))
        scheme = self.rate_limit_storage.partition("://")[0]
        if "://" not in self.rate_limit_storage or scheme not in ("memory", "redis"):
            problems.append(("rate_limit_storage", "must start with memory:// or redis://"))
        return problems
