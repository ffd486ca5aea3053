"""`identity up`: the whole mesh on one machine, with embedded defaults.

Starts the six services and the gateway as child processes (gRPC servers
must not fork after start, so each gets its own interpreter), on the
default ports unless `<PREFIX>_PORT` / `GATEWAY_PORT` say otherwise, with an
embedded SQLite database and local secrets in the data directory. It checks
settings and ports before starting anything, waits until every service
reports SERVING, prints where each listens, and stops everything cleanly on
Ctrl-C (SIGTERM to each child, then SIGKILL after the grace period).

Once the mesh is up it supervises: a child that exits is started again after
an exponential backoff (0.5 s, 1 s, 2 s, ... capped at 30 s), each exit and
restart printed under the banner and appended to `<data dir>/logs/up.log`.
A child that keeps crashing (5 restarts without staying up a minute) is
given up on: `identity up` stops the rest and exits non-zero with the
child's last log lines. A child that dies before the mesh is first up stops
everything the same way (a configuration error does not heal by retrying).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from identity_cli import prometheus
from identity_cli.common import add_database_options, data_dir, database_url
from identity_cli.errors import CliError
from identity_cli.up_config import listeners, load_all_settings, mesh_environment, pad_banner_line
from identity_runtime import mesh

READY_TIMEOUT_SECONDS = 180.0
STOP_GRACE_SECONDS = 15.0
# Supervision: the first restart waits RESTART_BACKOFF_SECONDS, each further
# one twice as long, up to RESTART_BACKOFF_CAP_SECONDS; a child restarted
# MAX_RESTARTS times without staying up STABLE_SECONDS is given up on.
RESTART_BACKOFF_SECONDS = 0.5
RESTART_BACKOFF_CAP_SECONDS = 30.0
MAX_RESTARTS = 5
STABLE_SECONDS = 60.0
# A child that stops cleanly (exit 0: asked to, e.g. the rolling restarts of
# the KEK rotation runbook) after running this long is restarted at once and
# does not count towards the crash loop.
CLEAN_STOP_AFTER_SECONDS = 5.0


@dataclass
class Child:
    name: str
    address: str
    process: subprocess.Popen[bytes]
    log_path: Path
    # How to start it again (the same command, environment and log file).
    respawn: Callable[[], subprocess.Popen[bytes]]
    # Restarts since it last stayed up STABLE_SECONDS.
    restarts: int = 0
    started_at: float = 0.0
    # When the pending restart is due (None: none pending).
    restart_at: float | None = None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("up", help="run every service and the gateway on this machine")
    add_database_options(parser)
    parser.add_argument(
        "--host",
        default=os.environ.get("IDENTITY_HOST", "127.0.0.1"),
        help="interface for every listener",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="also stream every service's logs to this terminal"
    )
    parser.add_argument(
        "--prometheus",
        action="store_true",
        help="serve every component's metrics and run Debian's prometheus on them, "
        "with the project's recording rules and alerts (deploy/prometheus)",
    )
    parser.add_argument(
        "--prometheus-port",
        type=int,
        default=prometheus.DEFAULT_PORT,
        help="Prometheus's web port (with --prometheus)",
    )
    parser.add_argument(
        "--prometheus-interval",
        default=prometheus.DEFAULT_INTERVAL,
        help="scrape and rule-evaluation interval (with --prometheus), e.g. 5s",
    )
    parser.set_defaults(handler=run)


def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def open_private_log(path: Path) -> BinaryIO:
    """A service's log file for appending, readable by its owner only (0600,
    also when an earlier run left it wider): logs are operational data, and
    a request id or an organisation id is nobody else's business."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


def _spawn(
    name: str, module: str, env: Mapping[str, str], logs: Path, verbose: bool
) -> subprocess.Popen[bytes]:
    log_file = open_private_log(logs / f"{name}.log")
    return subprocess.Popen(
        [sys.executable, "-m", module],
        env=dict(env),
        stdout=None if verbose else log_file,
        stderr=None if verbose else subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches us only; we stop the children in order
    )


def _grpc_serving(address: str, env: Mapping[str, str]) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    # Over the mesh's mutual TLS, as the gateway's certificate (unless MESH_TLS=off).
    if env.get("GATEWAY_MESH_TLS", "on") == "off":
        channel = grpc.insecure_channel(address)
    else:
        credentials = grpc.ssl_channel_credentials(
            *(
                Path(env[f"GATEWAY_MESH_TLS_{part}_FILE"]).read_bytes()
                for part in ("CA", "KEY", "CERT")
            )
        )
        channel = grpc.secure_channel(address, credentials)
    with channel:
        try:
            # typeshed's HealthStub declares no methods; grpc's generated one has Check.
            reply = health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(), timeout=1.0
            )
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def _http_ok(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _ready(child: Child, gateway_url: str, env: Mapping[str, str]) -> bool:
    if child.name == "gateway":
        return _http_ok(f"{gateway_url}/api/healthz")
    if child.name == "prometheus":
        return _http_ok(f"{child.address}/-/ready")
    return _grpc_serving(child.address, env)


def _wait_ready(
    children: list[Child], gateway_url: str, stop: list[bool], env: Mapping[str, str]
) -> Child | None:
    """None when every child is ready; otherwise the child that died."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    pending = {c.name for c in children}
    while pending and time.monotonic() < deadline and not stop:
        for child in children:
            if child.process.poll() is not None:
                return child
            if child.name not in pending:
                continue
            if _ready(child, gateway_url, env):
                pending.discard(child.name)
        time.sleep(0.2)
    if pending and not stop:
        raise TimeoutError(
            f"not ready after {READY_TIMEOUT_SECONDS:.0f}s: {', '.join(sorted(pending))}"
        )
    return None


class Supervisor:
    """Restarts children that exit, with backoff; gives up on a crash loop.

    `check(now)` is called periodically; it returns the child it gave up on,
    if any. `say` reports each exit and restart (the terminal and up.log)."""

    def __init__(self, children: list[Child], say: Callable[[str], None]):
        self.children = children
        self.say = say

    @staticmethod
    def backoff(restarts: int) -> float:
        return float(min(RESTART_BACKOFF_CAP_SECONDS, RESTART_BACKOFF_SECONDS * 2**restarts))

    def check(self, now: float) -> Child | None:
        for child in self.children:
            if child.restart_at is None and child.process.poll() is None:
                if child.restarts and now - child.started_at >= STABLE_SECONDS:
                    child.restarts = 0  # it stayed up: a later crash starts a fresh count
                continue
            if child.restart_at is None:
                code = child.process.returncode
                if code == 0 and now - child.started_at >= CLEAN_STOP_AFTER_SECONDS:
                    self._respawn(child, now)
                    self.say(f"{child.name} stopped cleanly; restarted (pid {child.process.pid})")
                    continue
                if child.restarts >= MAX_RESTARTS:
                    self.say(
                        f"{child.name} exited with code {code} after {child.restarts} "
                        "restarts in a row; giving up"
                    )
                    return child
                delay = self.backoff(child.restarts)
                child.restart_at = now + delay
                self.say(
                    f"{child.name} exited with code {code}; restarting in {delay:g}s "
                    f"(restart {child.restarts + 1} of at most {MAX_RESTARTS})"
                )
            elif now >= child.restart_at:
                self._respawn(child, now)
                child.restarts += 1
                self.say(f"{child.name} restarted (pid {child.process.pid})")
        return None

    @staticmethod
    def _respawn(child: Child, now: float) -> None:
        child.process = child.respawn()
        child.started_at = now
        child.restart_at = None


def _stop_all(children: list[Child]) -> None:
    """Stops the children in waves (`mesh.stop_waves`): the gateway first,
    then the services it leaves running that nothing else calls, and so on,
    each wave drained (or killed after STOP_GRACE_SECONDS) before the next is
    asked to stop, so a capture in flight is answered, not cut off by a
    dependency that stopped first."""
    by_name = {child.name: child for child in children}
    for wave in mesh.stop_waves(list(by_name)):
        stopping = [by_name[name] for name in wave]
        for child in stopping:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in stopping:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(remaining)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()


def _reporter(log_path: Path) -> Callable[[str], None]:
    """Prints a supervision event under the banner and appends it to up.log."""

    def say(message: str) -> None:
        print(f"identity up: {message}", flush=True)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with log_path.open("a") as log:
            log.write(f"{stamp} {message}\n")

    return say


def run(args: argparse.Namespace) -> int:
    from identity_cli.local_secrets import ensure_local_org
    from identity_cli.schema import migrate_all

    env = mesh_environment(args, os.environ)
    if args.prometheus:
        prometheus.binary()  # refuse before anything starts
        env.update(prometheus.metrics_environment(env))
    settings, problems = load_all_settings(env)
    if problems:
        raise CliError("invalid configuration: " + "; ".join(problems))
    wanted = listeners(env)
    if args.prometheus:
        wanted += [
            (f"{name} metrics", host_port.rsplit(":", 1)[0], int(host_port.rsplit(":", 1)[1]))
            for name, host_port in prometheus.targets(env).items()
        ]
        wanted.append(("prometheus", args.host, args.prometheus_port))
    taken = [
        f"{name} port {port} on {host}" for name, host, port in wanted if _port_taken(host, port)
    ]
    if taken:
        raise CliError(
            f"ports already in use: {'; '.join(taken)}: stop what holds them "
            "or choose others (e.g. GATEWAY_PORT=8081)"
        )

    url = database_url(args)
    migrate_all(url)
    api_key_note = ensure_local_org(data_dir(args), url, env["KYC_TIER_API_KEY_PEPPER"])

    logs = data_dir(args) / "logs"
    logs.mkdir(mode=0o700, parents=True, exist_ok=True)
    logs.chmod(0o700)
    stop: list[bool] = []

    def request_stop(_signum: int, _frame: object) -> None:
        stop.append(True)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    def starter(name: str, module: str) -> Callable[[], subprocess.Popen[bytes]]:
        return lambda: _spawn(name, module, env, logs, args.verbose)

    children: list[Child] = []
    try:
        for service in mesh.SERVICES:
            address = f"{env[f'{service.env_prefix}_HOST']}:{env[f'{service.env_prefix}_PORT']}"
            start = starter(service.name, service.module)
            children.append(
                Child(service.name, address, start(), logs / f"{service.name}.log", start)
            )
        gateway_url = f"http://{env['GATEWAY_HOST']}:{env['GATEWAY_PORT']}"
        start = starter("gateway", "gateway")
        children.append(Child("gateway", gateway_url, start(), logs / "gateway.log", start))
        if args.prometheus:
            directory = data_dir(args) / "prometheus"
            config = prometheus.write_config(
                directory,
                prometheus.targets(env),
                prometheus.rule_files(),
                args.prometheus_interval,
            )

            def start_prometheus() -> subprocess.Popen[bytes]:
                return prometheus.spawn(
                    config,
                    directory,
                    args.host,
                    args.prometheus_port,
                    open_private_log(logs / "prometheus.log"),
                )

            prometheus_url = f"http://{args.host}:{args.prometheus_port}"
            children.append(
                Child(
                    "prometheus",
                    prometheus_url,
                    start_prometheus(),
                    logs / "prometheus.log",
                    start_prometheus,
                )
            )
        try:
            dead = _wait_ready(children, gateway_url, stop, env)
        except TimeoutError as exc:
            print(f"identity up: {exc}", file=sys.stderr)
            return 1
        if dead is not None:
            print(
                f"identity up: {dead.name} exited with code {dead.process.returncode}; "
                "last log lines:",
                file=sys.stderr,
            )
            print(dead.tail(), file=sys.stderr)
            return 1
        if stop:
            return 0
        print("identity platform is up:")
        for child in children:
            print(f"  {child.name:<16} {child.address}")
        print(f"  OpenAPI          {gateway_url}/api/openapi.json")
        print(f"  health           {gateway_url}/api/healthz")
        if settings["gateway"].sdk_demo:
            print(f"  web SDK demo     {gateway_url}/sdk-demo")
        print(pad_banner_line(settings["liveness"]))
        print(f"  data and logs    {data_dir(args)}")
        if api_key_note:
            print(api_key_note)
        print("press Ctrl-C to stop", flush=True)
        now = time.monotonic()
        for child in children:
            child.started_at = now
        supervisor = Supervisor(children, _reporter(logs / "up.log"))
        while not stop:
            gave_up = supervisor.check(time.monotonic())
            if gave_up is not None:
                print(
                    f"identity up: {gave_up.name} keeps crashing (exit code "
                    f"{gave_up.process.returncode}, {gave_up.restarts} restarts without "
                    f"staying up {STABLE_SECONDS:.0f}s); stopping everything. Last log lines:",
                    file=sys.stderr,
                )
                print(gave_up.tail(), file=sys.stderr)
                return 1
            time.sleep(0.2)
        return 0
    finally:
        with contextlib.suppress(Exception):
            _stop_all(children)
        if stop:
            print("identity platform stopped", flush=True)
