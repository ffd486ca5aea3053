"""Throwaway PostgreSQL and Redis servers that speak only TLS, with
certificates made by the test (identity_runtime.meshtls's CA helpers): how
production's managed stores look to the services (README "TLS to the data
stores"). PostgreSQL is a fresh cluster (initdb) in a temporary directory on
a free port whose pg_hba accepts only `hostssl ... cert` (the client
certificate's CN is the role); Redis listens on a TLS port only.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from identity_runtime import meshtls
from tests.support import unavailable

ROLE = "identity"


@dataclass(frozen=True)
class TlsFiles:
    """A CA, a server certificate for `localhost` (no IP address: a client
    dialling 127.0.0.1 must fail verify-full) and a client certificate for ROLE."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    # A CA that signed nothing here (a client trusting it must refuse the server).
    other_ca: Path


def make_tls_files(directory: Path) -> TlsFiles:
    ca_cert, ca_key = meshtls.new_ca("identity-platform test data-store CA")
    other_ca, _ = meshtls.new_ca("some other CA")
    server = meshtls.issue(ca_cert, ca_key, "data-store", ["localhost"])
    client = meshtls.issue(ca_cert, ca_key, ROLE, [])
    paths = {}
    for name, data in {
        "ca.crt": ca_cert,
        "other-ca.crt": other_ca,
        "server.crt": server[0],
        "server.key": server[1],
        "client.crt": client[0],
        "client.key": client[1],
    }.items():
        path = directory / name
        path.write_bytes(data)
        path.chmod(0o600 if name.endswith(".key") else 0o644)
        paths[name] = path
    return TlsFiles(
        ca=paths["ca.crt"],
        server_cert=paths["server.crt"],
        server_key=paths["server.key"],
        client_cert=paths["client.crt"],
        client_key=paths["client.key"],
        other_ca=paths["other-ca.crt"],
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), ""
    )
    if not found:
        unavailable(f"PostgreSQL's {name}", "not installed")
    return found


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as `postgres` then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def tls_postgres() -> Iterator[tuple[int, TlsFiles]]:
    """A PostgreSQL cluster accepting only TLS with client certificates:
    (port, files). Database `identity`, owned by role `identity`."""
    # As root the server runs as `postgres`, which cannot enter the tests'
    # private temporary directory: use the system's.
    directory = Path(
        tempfile.mkdtemp(prefix="identity-tls-pg-", dir="/tmp" if os.geteuid() == 0 else None)
    )
    try:
        files = make_tls_files(directory)
        data = directory / "data"
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
            for path in (files.server_cert, files.server_key, files.ca):
                shutil.chown(path, "postgres", "postgres")
        subprocess.run(
            _as_server_user(
                [_postgres_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
            ),
            check=True,
            capture_output=True,
        )
        (data / "pg_hba.conf").write_text(
            "local all all trust\nhostssl all all 127.0.0.1/32 cert\nhostssl all all ::1/128 cert\n"
        )
        port = free_port()
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {port}\nlisten_addresses = 'localhost'\n"
                f"unix_socket_directories = '{directory}'\nssl = on\n"
                f"ssl_cert_file = '{files.server_cert}'\nssl_key_file = '{files.server_key}'\n"
                f"ssl_ca_file = '{files.ca}'\nfsync = off\n"
            )
        pg_ctl = _postgres_bin("pg_ctl")
        subprocess.run(
            _as_server_user([pg_ctl, "-D", str(data), "-w", "-l", str(directory / "log"), "start"]),
            check=True,
            capture_output=True,
        )
        try:
            psql = [_postgres_bin("psql"), "-h", str(directory), "-p", str(port), "-U", "postgres"]
            subprocess.run(
                _as_server_user([*psql, "-c", f"CREATE ROLE {ROLE} LOGIN"]),
                check=True,
                capture_output=True,
            )
            subprocess.run(
                _as_server_user([*psql, "-c", f"CREATE DATABASE identity OWNER {ROLE}"]),
                check=True,
                capture_output=True,
            )
            yield port, files
        finally:
            subprocess.run(
                _as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
                capture_output=True,
            )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def libpq_env(files: TlsFiles, ca: Path | None = None) -> dict[str, str]:
    """What the chart sets from dataStoreTls.postgres (PGSSLROOTCERT, PGSSLCERT, PGSSLKEY)."""
    return {
        "PGSSLROOTCERT": str(ca or files.ca),
        "PGSSLCERT": str(files.client_cert),
        "PGSSLKEY": str(files.client_key),
    }


@contextlib.contextmanager
def tls_redis() -> Iterator[tuple[int, TlsFiles]]:
    """A Redis server on a TLS-only port (client certificates not required)."""
    server = shutil.which("redis-server")
    if not server:
        unavailable("redis-server", "not installed")
    directory = Path(tempfile.mkdtemp(prefix="identity-tls-redis-"))
    files = make_tls_files(directory)
    port = free_port()
    process = subprocess.Popen(
        [
            server,
            "--port", "0",
            "--tls-port", str(port),
            "--tls-cert-file", str(files.server_cert),
            "--tls-key-file", str(files.server_key),
            "--tls-ca-cert-file", str(files.ca),
            "--tls-auth-clients", "no",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        yield port, files
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)
