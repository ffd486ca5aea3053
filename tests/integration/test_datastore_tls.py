"""TLS to the data stores, as the chart configures it (dataStoreTls: the CA and
client certificate mounted, PGSSLROOTCERT/PGSSLCERT/PGSSLKEY for libpq; the
Redis CA in the rediss:// URL), against real servers started by the test
that accept nothing but TLS (tests/support/tls_stores.py).

PostgreSQL: `identity migrate` and kyc-tier connect with
`sslmode=verify-full` and certificate authentication; a client trusting
another CA, dialling an address the certificate does not name, or without
TLS is refused. Redis: the gateway's rate limiter counts over rediss:// and
refuses a server its CA did not sign.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from gateway.ratelimit import RateLimiter
from identity_cli.main import main as identity
from identity_cli.schema import HISTORIES
from identity_store import compat
from identity_store.db import make_engine
from tests.support.kyc_fakes import KycFakes, fake_kyc_core, new_org
from tests.support.tls_stores import ROLE, TlsFiles, libpq_env, tls_postgres, tls_redis


@pytest.fixture(scope="module")
def postgres() -> Iterator[tuple[int, TlsFiles]]:
    with tls_postgres() as server:
        yield server


def url(port: int, host: str = "localhost", sslmode: str = "verify-full") -> str:
    return f"postgresql://{ROLE}@{host}:{port}/identity?sslmode={sslmode}"


def connection_error(database_url: str) -> str:
    engine = make_engine(database_url)
    try:
        with pytest.raises(sa.exc.OperationalError) as caught:
            with engine.connect():
                pass
        return str(caught.value)
    finally:
        engine.dispose()


def test_migrations_and_a_service_run_over_verified_tls(
    postgres: tuple[int, TlsFiles], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, files = postgres
    for name, value in libpq_env(files).items():
        monkeypatch.setenv(name, value)
    database_url = url(port)

    # The migrations Job's command, with the URL the Job reads.
    monkeypatch.setenv("IDENTITY_DATABASE_URL", database_url)
    assert identity(["migrate"]) == 0
    assert all(compat.schema_problem(database_url, h) is None for h in HISTORIES)

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            ssl, client_dn = connection.execute(
                sa.text("SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            ).one()
    finally:
        engine.dispose()
    assert ssl is True and client_dn == f"/CN={ROLE}"

    async def serve() -> tuple[bool, str]:
        async with fake_kyc_core(database_url, KycFakes()) as core:
            await new_org(core)
            return await core.ready()

    ready, reason = asyncio.run(serve())
    assert ready, reason


def test_untrusted_unnamed_or_plaintext_connections_are_refused(
    postgres: tuple[int, TlsFiles], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, files = postgres
    for name, value in libpq_env(files, ca=files.other_ca).items():
        monkeypatch.setenv(name, value)
    assert "certificate verify failed" in connection_error(url(port))

    for name, value in libpq_env(files).items():
        monkeypatch.setenv(name, value)
    # The server's certificate names localhost, not 127.0.0.1.
    assert "does not match host name" in connection_error(url(port, host="127.0.0.1"))
    # pg_hba accepts TLS only.
    assert "no encryption" in connection_error(url(port, sslmode="disable"))


def test_the_gateways_rate_limits_count_in_redis_over_tls() -> None:
    with tls_redis() as (port, files):

        async def check(ca: str) -> None:
            limiter = RateLimiter(
                f"rediss://localhost:{port}/0?ssl_ca_certs={ca}", key_prefix="tls-test"
            )
            try:
                await limiter.check_store()
            finally:
                await limiter.close()

        asyncio.run(check(str(files.ca)))
        with pytest.raises(ConnectionError, match="not reachable"):
            asyncio.run(check(str(files.other_ca)))
