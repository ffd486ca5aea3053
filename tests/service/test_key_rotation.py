"""KEK rotation by the runbook, with the `identity keys` command and live matching replicas;
the rotation covers every owner's data keys (matching's templates, kyc-tier's NIKs)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from identity_cli.main import main as identity
from identity_crypto.datakeys import DataKeyStore
from identity_crypto.keyring import Keyring, generate, write_keyring_file
from identity_crypto.kms import LocalKms
from identity_store.db import Database
from services.kyc_tier import models as kyc_tier
from services.matching import models as matching
from services.matching.service import SPEC as MATCHING
from tests.support import start_service
from tests.support.matching import Client, near, unit


def last_json(output: str) -> dict:
    """The command's JSON line (service logs share stdout in tests)."""
    return json.loads([line for line in output.splitlines() if line.startswith("{")][-1])


def replica_env(url: str, keyring: Path) -> dict[str, str]:
    return {
        "MATCHING_DATABASE_URL": url,
        "MATCHING_KEK_KEYRING_FILE": str(keyring),
        "MATCHING_SYNC_INTERVAL_SECONDS": "3600",
        # Every verification opens its template and unwraps its data key, so the
        # test sees each KEK in use.
        "MATCHING_KEY_CACHE_SIZE": "0",
        "MATCHING_TEMPLATE_CACHE_SIZE": "0",
    }


@pytest.mark.postgres
async def test_rotation_runbook_without_downtime(postgres_url: str, tmp_path: Path, capsys) -> None:
    keyring_file = tmp_path / "kek-keyring.json"
    write_keyring_file(keyring_file, generate("kek-2026-01"))
    # kyc-tier's own data key (a customer's NIK key), in kyc-tier's table.
    database = Database(postgres_url)
    with database.transaction() as session:
        session.add(kyc_tier.Org(org_id="org_a", name="org_a"))
        session.flush()
        kyc_keys = DataKeyStore(LocalKms(Keyring.from_file(keyring_file)), kyc_tier.DataKey, 0)
        nik_key = kyc_keys.customer_key(session, "org_a", "cus_kyc", "pii")
    database.dispose()
    rng = np.random.default_rng(11)
    faces = {f"cus_{i}": unit(128, rng) for i in range(30)}

    servers = []

    async def replica():
        server = await start_service(MATCHING, replica_env(postgres_url, keyring_file))
        servers.append(server)
        return server

    async def retire(server) -> None:
        servers.remove(server)
        await server.stop(0)

    try:
        old = await replica()
        async with Client(old, "org_a") as client:
            for customer_id, face in faces.items():
                await client.enroll(customer_id, face)

        # 1. Add the new KEK (not primary yet) and roll it out.
        assert identity(["keys", "add", "--keyring", str(keyring_file), "--id", "kek-2026-07"]) == 0
        rolled = await replica()
        await retire(old)
        # 2. Make it primary and roll out again; both generations run side by side.
        assert identity(["keys", "set-primary", "--keyring", str(keyring_file), "kek-2026-07"]) == 0
        assert Keyring.from_file(keyring_file).primary_id == "kek-2026-07"
        current = await replica()
        async with Client(current, "org_a") as client:
            faces["cus_new"] = unit(128, rng)
            await client.enroll("cus_new", faces["cus_new"])  # wrapped under the new KEK at once

        # 3. Re-wrap while both replicas keep verifying.
        verified = 0

        async def keep_verifying(stop: asyncio.Event) -> None:
            nonlocal verified
            async with Client(rolled, "org_a") as a, Client(current, "org_a") as b:
                while not stop.is_set():
                    for client in (a, b):
                        customer_id = list(faces)[verified % len(faces)]
                        result = await client.verify(
                            near(faces[customer_id], 0.8, rng), customer_id=customer_id
                        )
                        assert result.match
                        verified += 1

        stop = asyncio.Event()
        verifier = asyncio.create_task(keep_verifying(stop))
        capsys.readouterr()
        rotate = await asyncio.to_thread(
            identity,
            [
                "keys",
                "rotate",
                "--keyring",
                str(keyring_file),
                "--database-url",
                postgres_url,
                "--batch-size",
                "4",
            ],
        )
        stop.set()
        await verifier
        assert rotate == 0
        # 30 templates' keys under the old KEK (cus_new's is new) and kyc-tier's NIK key.
        assert last_json(capsys.readouterr().out)["rewrapped"] == 31
        assert verified >= 2  # both generations answered during the re-wrap

        database = Database(postgres_url)
        with database.transaction() as session:
            for table in (matching.DataKey, kyc_tier.DataKey):
                assert set(session.scalars(sa.select(table.kek_id)).all()) == {"kek-2026-07"}
            # kyc-tier's key opens under the new KEK alone, to the same material.
            only_new = Keyring.from_file(keyring_file).without_key("kek-2026-01")
            rewrapped = session.get(kyc_tier.DataKey, nik_key.key_id)
            opened = DataKeyStore(LocalKms(only_new), kyc_tier.DataKey, 0).open_key(rewrapped)
            assert opened == nik_key.material
        database.dispose()
        capsys.readouterr()
        assert (
            identity(
                ["keys", "status", "--keyring", str(keyring_file), "--database-url", postgres_url]
            )
            == 0
        )
        assert last_json(capsys.readouterr().out)["live_data_keys_by_kek"] == {"kek-2026-07": 32}

        # 4. Retire the old KEK; the one still in use cannot be removed.
        assert (
            identity(
                [
                    "keys",
                    "remove",
                    "--keyring",
                    str(keyring_file),
                    "--database-url",
                    postgres_url,
                    "kek-2026-01",
                ]
            )
            == 0
        )
        assert (
            identity(
                [
                    "keys",
                    "remove",
                    "--keyring",
                    str(keyring_file),
                    "--database-url",
                    postgres_url,
                    "kek-2026-07",
                ]
            )
            == 1
        )
        await retire(rolled)
        await retire(current)
        fresh = await replica()
        async with Client(fresh, "org_a") as client:
            assert (await client.search(faces["cus_3"])).gallery_size == 31
            for customer_id, face in faces.items():
                assert (await client.verify(face, customer_id=customer_id)).score > 0.99
    finally:
        for server in servers:
            await server.stop(0)


def test_local_keyrings_are_created_once_and_found_by_the_cli(tmp_path: Path, monkeypatch) -> None:
    from identity_cli.keys import kek_keyring
    from identity_cli.main import build_parser
    from identity_cli.secrets import read_or_create_keyring

    path = read_or_create_keyring(tmp_path, "kek-keyring.json", "kek-local-1")
    first = path.read_text()
    assert read_or_create_keyring(tmp_path, "kek-keyring.json", "kek-other") == path
    assert path.read_text() == first and path.stat().st_mode & 0o777 == 0o600
    monkeypatch.delenv("MATCHING_KEK_KEYRING_FILE", raising=False)
    monkeypatch.delenv("MATCHING_KEK_KEYRING", raising=False)
    args = build_parser().parse_args(["keys", "status", "--data-dir", str(tmp_path)])
    assert kek_keyring(args).primary_id == "kek-local-1"
