"""PgBouncer (Debian's package, `tools/dev setup` installs it) in transaction
pooling mode in front of a fresh database of the tests' PostgreSQL: how the
README's "Connection budget" puts it in front of production's."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from identity_store.db import normalise_url
from identity_store.scratch import reachable
from tests.support import POSTGRES_URL, unavailable
from tests.support.tls_stores import free_port

# Server connections PgBouncer keeps per database: far fewer than the mesh's
# pools add up to, so the flows prove the multiplexing.
SERVER_POOL = 4


@contextlib.contextmanager
def pgbouncer_database() -> Iterator[tuple[str, str]]:
    """(direct URL, URL through PgBouncer) of a new, empty database."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(binary):
        unavailable("pgbouncer", "not installed (apt-get install pgbouncer)")
    problem = reachable(POSTGRES_URL)
    if problem:
        unavailable(f"PostgreSQL at {POSTGRES_URL}", problem)
    server = sa.engine.make_url(normalise_url(POSTGRES_URL))
    name = f"pgb_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT", hide_parameters=True
    )
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    root = os.geteuid() == 0
    directory = Path(tempfile.mkdtemp(prefix="identity-pgbouncer-", dir="/tmp" if root else None))
    port = free_port()
    (directory / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{name} = host={server.host} port={server.port or 5432} dbname={name} "
        f"user={server.username}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        "auth_type = any\npool_mode = transaction\n"
        f"default_pool_size = {SERVER_POOL}\nmax_client_conn = 500\n"
        f"logfile = {directory}/pgbouncer.log\n"
    )
    if root:
        shutil.chown(directory, "postgres", "postgres")
        shutil.chown(directory / "pgbouncer.ini", "postgres", "postgres")
    command = [binary, str(directory / "pgbouncer.ini")]
    process = subprocess.Popen(
        ["runuser", "-u", "postgres", "--", *command] if root else command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        direct = server.set(database=name).render_as_string(hide_password=False)
        bouncer = f"postgresql://{server.username}@127.0.0.1:{port}/{name}"
        yield direct, bouncer
    finally:
        process.terminate()
        process.wait(10)
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(directory, ignore_errors=True)


def server_connections(direct_url: str) -> int:
    """Connections PostgreSQL holds to the database, this one aside."""
    engine = sa.create_engine(normalise_url(direct_url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()
