"""Signed checkpoints outside the database (services/audit/checkpoints.py):
the audit service writes them on its own; `identity audit verify` reads them
and reports a cut tail with a rewound head, with no anchor to supply. Both
databases, a real gRPC server, real Ed25519."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from identity_cli.main import main as identity
from services.audit.chain import Entry
from services.audit.checkpoints import (
    CheckpointWriter,
    create_key_pair,
    load_private_key,
    load_public_key,
    read_checkpoints,
    signature_valid,
)
from services.audit.service import SPEC as AUDIT
from tests.service.test_audit import KEYRING, Client, env, execute, request
from tests.support import start_service

EVERY = 5


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "secrets" / "checkpoint.pem", tmp_path / "checkpoint.pub"
    create_key_pair(private, public)
    return private, public


def checkpoint_env(url: str, file: Path, key: Path, **extra: str) -> dict[str, str]:
    return {
        **env(url),
        "AUDIT_CHECKPOINT_FILE": str(file),
        "AUDIT_CHECKPOINT_KEY_FILE": str(key),
        "AUDIT_CHECKPOINT_EVERY_ENTRIES": str(EVERY),
        # Far off: only the entry count writes checkpoints in this test.
        "AUDIT_CHECKPOINT_EVERY_SECONDS": "3600",
        **extra,
    }


def verify(url: str, file: Path, public: Path, capsys) -> tuple[int, dict]:
    capsys.readouterr()
    code = identity(
        [
            "audit",
            "verify",
            "--database-url",
            url,
            "--checkpoints",
            str(file),
            "--checkpoint-public-key",
            str(public),
        ]
    )
    return code, json.loads(capsys.readouterr().out)


async def test_a_cut_tail_with_a_rewound_head_is_reported_without_an_anchor(
    database_url: str, tmp_path: Path, keys, capsys, monkeypatch
) -> None:
    private, public = keys
    file = tmp_path / "checkpoints" / "audit.jsonl"
    server = await start_service(AUDIT, checkpoint_env(database_url, file, private))
    try:
        async with Client(server) as client:
            for i in range(1, 13):
                await client.append(request(i))
    finally:
        await server.stop(0)  # a clean stop checkpoints the head (12) on the way out
    written = read_checkpoints(file)
    assert [c.sequence for c in written] == [5, 10, 12]
    assert all(signature_valid(c, load_public_key(public)) for c in written)
    assert oct(file.stat().st_mode & 0o777) == "0o600"
    monkeypatch.setenv("AUDIT_HMAC_KEYRING", KEYRING.to_json())
    code, report = verify(database_url, file, public, capsys)
    assert (code, report["intact"], report["checkpoints_checked"]) == (0, True, 3)

    # Whoever can write the database deletes the newest entries and rewinds the head.
    execute(
        database_url,
        "DELETE FROM audit_entries WHERE sequence > 8",
        "UPDATE audit_chain_head SET last_sequence = 8, last_hmac ="
        " (SELECT entry_hmac FROM audit_entries WHERE sequence = 8)",
    )
    # The chain alone still verifies...
    capsys.readouterr()
    assert identity(["audit", "verify", "--database-url", database_url]) == 0
    # ...the checkpoints do not: the first missing entry is named.
    code, report = verify(database_url, file, public, capsys)
    assert code == 1
    assert (report["intact"], report["problem"], report["first_bad_sequence"]) == (
        False,
        "TAIL_TRUNCATED",
        9,
    )


async def test_the_checkpoint_file_is_found_from_the_environment(
    database_url: str, tmp_path: Path, keys, capsys, monkeypatch
) -> None:
    private, _ = keys
    file = tmp_path / "audit.jsonl"
    server = await start_service(AUDIT, checkpoint_env(database_url, file, private))
    try:
        async with Client(server) as client:
            for i in range(1, 6):
                await client.append(request(i))
    finally:
        await server.stop(0)
    execute(
        database_url,
        "DELETE FROM audit_entries WHERE sequence = 5",
        "UPDATE audit_chain_head SET last_sequence = 4, last_hmac ="
        " (SELECT entry_hmac FROM audit_entries WHERE sequence = 4)",
    )
    # What the audit service itself reads (the private key gives the public one).
    monkeypatch.setenv("AUDIT_HMAC_KEYRING", KEYRING.to_json())
    monkeypatch.setenv("AUDIT_CHECKPOINT_FILE", str(file))
    monkeypatch.setenv("AUDIT_CHECKPOINT_KEY_FILE", str(private))
    capsys.readouterr()
    assert identity(["audit", "verify", "--database-url", database_url]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["problem"], report["first_bad_sequence"]) == ("TAIL_TRUNCATED", 5)


async def test_forged_or_rewritten_checkpoints_are_refused(
    database_url: str, tmp_path: Path, keys, capsys, monkeypatch
) -> None:
    private, public = keys
    file = tmp_path / "audit.jsonl"
    server = await start_service(AUDIT, checkpoint_env(database_url, file, private))
    try:
        async with Client(server) as client:
            for i in range(1, 6):
                await client.append(request(i))
    finally:
        await server.stop(0)
    monkeypatch.setenv("AUDIT_HMAC_KEYRING", KEYRING.to_json())
    original = file.read_text()
    # A checkpoint edited to a lower sequence (to hide the cut) no longer verifies.
    line = json.loads(original.splitlines()[0])
    line["sequence"] = 3
    file.write_text(json.dumps(line) + "\n")
    code, report = verify(database_url, file, public, capsys)
    assert (code, report["problem"], report["first_bad_sequence"]) == (1, "CHECKPOINT_INVALID", 3)
    # One signed with another key neither.
    other_private, other_public = tmp_path / "other.pem", tmp_path / "other.pub"
    create_key_pair(other_private, other_public)
    file.write_text(original)
    code, report = verify(database_url, file, other_public, capsys)
    assert (code, report["problem"]) == (1, "CHECKPOINT_INVALID")


def test_a_checkpoint_is_written_every_n_entries_or_t_seconds(tmp_path: Path, keys) -> None:
    import asyncio

    private, public = keys
    now = [0.0]
    file = tmp_path / "audit.jsonl"
    writer = CheckpointWriter(file, load_private_key(private), 3, 10.0, clock=lambda: now[0])

    def entry(sequence: int) -> Entry:
        return Entry(
            "org_a", "service:kyc-tier", "face.match", "customer:c", "success", "r",
            sequence=sequence, entry_id=f"aud_{sequence}",
            recorded_at=datetime(2026, 11, 26, tzinfo=UTC), previous_hmac="",
            entry_hmac=f"{sequence:064x}", key_id="k",
        )  # fmt: skip

    async def scenario() -> list[int]:
        await writer.committed([entry(1), entry(2)])
        await writer.tick()  # neither 3 entries nor 10 s yet
        await writer.committed([entry(3)])  # 3 entries: written
        await writer.committed([entry(4)])
        now[0] = 9.9
        await writer.tick()
        now[0] = 13.0  # 10 s after the last: written
        await writer.tick()
        now[0] = 30.0  # the head did not move: nothing
        await writer.tick()
        return [c.sequence for c in read_checkpoints(file)]

    assert asyncio.run(scenario()) == [3, 4]
    # A restarted writer continues after what the file holds.
    again = CheckpointWriter(file, load_private_key(private), 3, 10.0, clock=lambda: now[0])
    assert again.written_sequence == 4
    assert all(signature_valid(c, load_public_key(public)) for c in read_checkpoints(file))
