"""The audit service: a real gRPC server, real PostgreSQL (and SQLite), real tampering."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp

from identity_cli.main import main as identity
from identity_crypto.keyring import generate, new_key, write_keyring_file
from identity_platform_api.audit.v1 import audit_pb2, audit_pb2_grpc
from identity_runtime.status import error_info, status_from_rpc_error
from identity_store.db import Database
from services.audit import models
from services.audit.bootstrap import open_database
from services.audit.chain import Draft
from services.audit.log import AuditLog
from services.audit.service import SPEC as AUDIT
from tests.support import channel, start_service
from tests.support.meshauth import caller_metadata

KEYRING = generate("audit-2026-01")
SHA = "ab" * 32


def env(url: str, keyring=KEYRING) -> dict[str, str]:
    return {"AUDIT_DATABASE_URL": url, "AUDIT_HMAC_KEYRING": keyring.to_json()}


def request(
    i: int, action: str = "face.match", subject: str | None = None, **extra
) -> audit_pb2.AppendRequest:
    fields = {
        "actor": "service:kyc-tier",
        "action": action,
        "subject": subject or f"customer:cus_{i % 3}",
        "outcome": audit_pb2.OUTCOME_SUCCESS,
        "evidence_hashes": {"probe": SHA},
        "details": {"score": f"0.{i:02d}", "model_id": "sface-2021dec"},
    }
    fields.update(extra)
    return audit_pb2.AppendRequest(**fields)


class Client:
    def __init__(self, server, org_id: str = "org_a"):
        self.channel = channel(server)
        self.stub = audit_pb2_grpc.AuditServiceStub(self.channel)
        self.org_id = org_id

    @property
    def metadata(self) -> list[tuple[str, str]]:
        """A fresh caller token for each call (tokens live a minute)."""
        return caller_metadata(self.org_id)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.channel.close()

    async def append(self, message: audit_pb2.AppendRequest) -> audit_pb2.AuditEntry:
        return (
            await self.stub.Append(message, metadata=self.metadata + [("x-request-id", "req-1")])
        ).entry

    async def verify(self, from_sequence: int = 0) -> audit_pb2.VerifyChainResponse:
        return await self.stub.VerifyChain(
            audit_pb2.VerifyChainRequest(from_sequence=from_sequence), metadata=self.metadata
        )

    async def query(self, **fields) -> audit_pb2.QueryEntriesResponse:
        return await self.stub.QueryEntries(
            audit_pb2.QueryEntriesRequest(**fields), metadata=self.metadata
        )


@pytest.fixture
async def audit_service(database_url: str):
    server = await start_service(AUDIT, env(database_url))
    yield server, database_url
    await server.stop(0)


async def test_appends_chain_gap_free_and_verify(audit_service) -> None:
    server, _ = audit_service
    async with Client(server) as client:
        written = [await client.append(request(i)) for i in range(1, 8)]
        report = await client.verify()
    assert [e.sequence for e in written] == list(range(1, 8))
    assert written[0].previous_hmac == "" and all(
        b.previous_hmac == a.entry_hmac for a, b in zip(written, written[1:], strict=False)
    )
    assert {e.key_id for e in written} == {"audit-2026-01"}
    assert written[0].tenant_id == "org_a" and written[0].request_id == "req-1"
    assert (report.intact, report.entries_checked, report.first_bad_sequence, report.problem) == (
        True,
        7,
        0,
        "",
    )
    assert (report.head_sequence, report.head_hmac) == (7, written[-1].entry_hmac)


async def test_bad_entries_are_refused_and_nothing_is_written(audit_service) -> None:
    server, _ = audit_service
    bad = [
        (
            audit_pb2.AppendRequest(
                actor="service:x", action="Face Match", subject="customer:c", outcome=1
            ),
            "action",
        ),
        (
            audit_pb2.AppendRequest(
                actor="Budi Santoso", action="face.match", subject="customer:c", outcome=1
            ),
            "actor",
        ),
        (
            audit_pb2.AppendRequest(actor="service:x", action="face.match", subject="customer:c"),
            "outcome",
        ),
        (
            audit_pb2.AppendRequest(
                actor="service:x", action="face.match", subject="nik:3171234567890001", outcome=1
            ),
            "subject",
        ),
        (request(1, evidence_hashes={"frame": "not-a-digest"}), "evidence_hashes.frame"),
        (request(1, details={"note": "x" * 501}), "details.note"),
        (request(1, details={"Bad Key": "v"}), "details"),
    ]
    async with Client(server) as client:
        for message, field in bad:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.append(message)
            info = error_info(status_from_rpc_error(caught.value))
            assert (caught.value.code(), info.reason, info.metadata["field"]) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                "INVALID_FIELD",
                field,
            )
            assert (
                "3171234567890001" not in caught.value.details()
                and "Budi" not in caught.value.details()
            )
        assert (await client.verify()).entries_checked == 0
    async with channel(server, credentials=False) as bare:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await audit_pb2_grpc.AuditServiceStub(bare).Append(request(1))
        assert error_info(status_from_rpc_error(caught.value)).reason == "CALLER_UNAUTHENTICATED"
    async with Client(server) as client:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.stub.Append(request(1), metadata=caller_metadata(""))
        assert error_info(status_from_rpc_error(caught.value)).reason == "TENANT_MISSING"


async def test_personal_data_in_details_is_redacted_before_it_is_chained(audit_service) -> None:
    server, database_url = audit_service
    details = {
        "reason": "asked by ani@example.co.id, NIK 3171234567890001, call 0812-3456-7890",
        "key_fingerprint": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "requested_at_ms": "1732243512345",
        # Grouped or dotted, as the log scrubbers read them; 16 digits inside an id are no NIK.
        "action": "transfer to 3273-0241-0795-0003, call 0812.3456.7890",
        "enrollment_id": "enr_ab3273024107950003cd",
        "note": "ref 3273_0241_0795_0003 or 0812_3456_7890",
    }
    async with Client(server) as client:
        entry = await client.append(request(1, action="customer.erase", details=details))
        assert (await client.verify()).intact
    assert entry.details["reason"] == "asked by <email>, NIK <nik>, call <phone>"
    assert entry.details["action"] == "transfer to <nik>, call <phone>"
    assert entry.details["note"] == "ref <nik> or <phone>"
    assert entry.details["enrollment_id"] == details["enrollment_id"]
    assert entry.details["key_fingerprint"] == details["key_fingerprint"]
    assert entry.details["requested_at_ms"] == details["requested_at_ms"]
    database = Database(database_url)
    with database.transaction() as session:
        stored = session.scalar(sa.select(models.AuditEntry.details))
    database.dispose()
    assert "3171234567890001" not in json.dumps(stored) and "ani@" not in json.dumps(stored)
    assert "3273-0241" not in json.dumps(stored) and "0812.3456" not in json.dumps(stored)


async def test_query_by_subject_action_and_time_with_keyset_pages(audit_service) -> None:
    server, _ = audit_service
    async with Client(server) as client, Client(server, "org_b") as other:
        for i in range(12):
            await client.append(request(i, action="kyc.tier_changed" if i % 2 else "face.match"))
        await other.append(request(99, subject="customer:cus_0"))
        mine = await client.query(subject="customer:cus_0", page_size=100)
        assert [e.subject for e in mine.entries] == ["customer:cus_0"] * 4
        assert {e.tenant_id for e in mine.entries} == {"org_a"}
        prefix = await client.query(action="kyc.", page_size=100)
        assert len(prefix.entries) == 6 and {e.action for e in prefix.entries} == {
            "kyc.tier_changed"
        }
        assert len((await client.query(action="kyc.tier_changed", page_size=100)).entries) == 6
        assert not (
            await client.query(action="kyc.tier", page_size=100)
        ).entries  # exact, not a prefix
        pages, token = [], ""
        while True:
            page = await client.query(page_size=5, page_token=token)
            pages.append([e.sequence for e in page.entries])
            token = page.next_page_token
            if not token:
                break
        assert [len(p) for p in pages] == [5, 5, 2]
        flat = [s for p in pages for s in p]
        assert flat == sorted(flat, reverse=True)  # newest first, no repeats
        later = Timestamp()
        later.FromDatetime(datetime.now(UTC) + timedelta(minutes=1))
        assert not (await client.query(start_time=later)).entries
        assert len((await client.query(end_time=later, page_size=500)).entries) == 12
        for fields, field in (
            ({"page_size": 501}, "page_size"),
            ({"page_token": "garbage!"}, "page_token"),
            ({"page_token": page_token_of(pages), "subject": "customer:cus_1"}, "page_token"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.query(**fields)
            assert error_info(status_from_rpc_error(caught.value)).metadata["field"] == field


def page_token_of(_pages) -> str:
    from services.audit.log import QueryFilter, encode_page_token

    return encode_page_token(5, QueryFilter(tenant_id="org_a"))


async def test_export_streams_the_callers_entries_in_chain_order(audit_service) -> None:
    server, _ = audit_service
    async with Client(server) as a, Client(server, "org_b") as b:
        for i in range(5):
            await (a if i % 2 == 0 else b).append(request(i))
        exported = [
            r.entry
            async for r in a.stub.ExportEntries(
                audit_pb2.ExportEntriesRequest(), metadata=a.metadata
            )
        ]
    assert [e.sequence for e in exported] == [1, 3, 5] and {e.tenant_id for e in exported} == {
        "org_a"
    }


# --- tampering, directly in PostgreSQL -------------------------------------------------------


def execute(url: str, *statements: str, **params) -> None:
    database = Database(url)
    with database.transaction() as session:
        for statement in statements:
            session.execute(sa.text(statement), params)
    database.dispose()


FORGED = (
    "INSERT INTO audit_entries (sequence, entry_id, recorded_at, tenant_id, actor, action,"
    " subject, outcome, request_id, evidence_hashes, details, previous_hmac, entry_hmac, key_id)"
    " VALUES (:seq, 'aud_forged', now(), 'org_a', 'service:kyc-tier', 'kyc.tier_changed',"
    " 'customer:cus_0', 'success', '', '{}', '{}', :prev, :mac, 'audit-2026-01')"
)


def tamper_edit(url: str, chain: list) -> None:
    execute(url, 'UPDATE audit_entries SET details = \'{"score": "0.99"}\' WHERE sequence = 5')


def tamper_delete(url: str, chain: list) -> None:
    execute(url, "DELETE FROM audit_entries WHERE sequence = 5")


def tamper_delete_and_renumber(url: str, chain: list) -> None:
    execute(
        url,
        "DELETE FROM audit_entries WHERE sequence = 5",
        "UPDATE audit_entries SET sequence = -sequence WHERE sequence > 5",
        "UPDATE audit_entries SET sequence = -sequence - 1 WHERE sequence < 0",
        "UPDATE audit_chain_head SET last_sequence = last_sequence - 1",
    )


def tamper_insert(url: str, chain: list) -> None:
    execute(
        url,
        "UPDATE audit_entries SET sequence = -sequence WHERE sequence >= 5",
        "UPDATE audit_entries SET sequence = -sequence + 1 WHERE sequence < 0",
        FORGED,
        "UPDATE audit_chain_head SET last_sequence = last_sequence + 1",
        seq=5,
        prev=chain[3].entry_hmac,
        mac="0" * 64,
    )


def tamper_insert_after_head(url: str, chain: list) -> None:
    execute(url, FORGED, seq=len(chain) + 1, prev=chain[-1].entry_hmac, mac="1" * 64)


def tamper_reorder(url: str, chain: list) -> None:
    execute(
        url,
        "UPDATE audit_entries SET sequence = -5 WHERE sequence = 5",
        "UPDATE audit_entries SET sequence = 5 WHERE sequence = 6",
        "UPDATE audit_entries SET sequence = 6 WHERE sequence = -5",
    )


def tamper_truncate_tail(url: str, chain: list) -> None:
    execute(url, "DELETE FROM audit_entries WHERE sequence >= 9")


TAMPERING = [
    (tamper_edit, 5, "ENTRY_ALTERED"),
    (tamper_delete, 5, "ENTRY_MISSING"),
    (tamper_delete_and_renumber, 5, "ENTRY_MISSING"),
    (tamper_insert, 5, "ENTRY_INSERTED"),
    (tamper_insert_after_head, 11, "ENTRY_INSERTED"),
    (tamper_reorder, 5, "ENTRIES_REORDERED"),
    (tamper_truncate_tail, 9, "ENTRY_MISSING"),
]


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("tamper", "position", "problem"), TAMPERING, ids=[t[0].__name__ for t in TAMPERING]
)
async def test_verify_pinpoints_tampering_in_postgres(
    postgres_url: str, tamper, position: int, problem: str, capsys, monkeypatch
) -> None:
    server = await start_service(AUDIT, env(postgres_url))
    try:
        async with Client(server) as client:
            chain = [await client.append(request(i)) for i in range(1, 11)]
            assert (await client.verify()).intact
            tamper(postgres_url, chain)
            report = await client.verify()
    finally:
        await server.stop(0)
    assert (report.intact, report.first_bad_sequence, report.problem) == (False, position, problem)
    # The operator command agrees and exits non-zero.
    monkeypatch.setenv("AUDIT_HMAC_KEYRING", KEYRING.to_json())
    capsys.readouterr()
    assert identity(["audit", "verify", "--database-url", postgres_url]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert (printed["first_bad_sequence"], printed["problem"]) == (position, problem)


# --- concurrency ------------------------------------------------------------------------------

WRITERS = 8
PER_WRITER = 40


def _writer(url: str, keyring_json: str, writer: int, barrier) -> int:
    from identity_crypto.keyring import Keyring

    database = open_database(url)
    audit_log = AuditLog(Keyring.from_json(keyring_json))
    barrier.wait()
    for i in range(PER_WRITER):
        draft = Draft(
            tenant_id="org_a",
            actor=f"service:writer{writer}",
            action="face.match",
            subject=f"customer:cus_{writer}_{i}",
            outcome="success",
            request_id=f"w{writer}-{i}",
        )
        with database.transaction() as session:
            audit_log.append(session, [draft])
    database.dispose()
    return writer


def test_eight_writer_processes_leave_one_gap_free_chain(database_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(WRITERS)
        with context.Pool(WRITERS) as pool:
            done = pool.starmap(
                _writer, [(database_url, KEYRING.to_json(), w, barrier) for w in range(WRITERS)]
            )
    assert sorted(done) == list(range(WRITERS))
    database = Database(database_url)
    with database.transaction() as session:
        sequences = session.scalars(
            sa.select(models.AuditEntry.sequence).order_by(models.AuditEntry.sequence)
        ).all()
        writers = session.scalars(sa.select(models.AuditEntry.actor)).all()
    report = AuditLog(KEYRING).verify(database.transaction)
    database.dispose()
    assert sequences == list(range(1, WRITERS * PER_WRITER + 1))
    assert len(set(writers)) == WRITERS
    assert report.intact and report.entries_checked == WRITERS * PER_WRITER


@pytest.mark.postgres
async def test_eight_concurrent_grpc_clients_on_two_replicas(postgres_url: str) -> None:
    replicas = [await start_service(AUDIT, env(postgres_url)) for _ in range(2)]
    try:
        clients = [Client(replicas[i % 2], f"org_{i % 3}") for i in range(WRITERS)]

        async def write(client: Client, index: int) -> list[int]:
            return [
                (await client.append(request(index * 100 + i))).sequence for i in range(PER_WRITER)
            ]

        results = await asyncio.gather(*(write(c, i) for i, c in enumerate(clients)))
        report = await clients[0].verify()
        for client in clients:
            await client.__aexit__()
    finally:
        for replica in replicas:
            await replica.stop(0)
    acknowledged = sorted(s for r in results for s in r)
    assert acknowledged == list(range(1, WRITERS * PER_WRITER + 1))
    assert report.intact and report.entries_checked == WRITERS * PER_WRITER


# --- keys, export, retention -----------------------------------------------------------------


def test_hmac_key_rotation_keeps_old_entries_verifiable(database_url: str) -> None:
    database = open_database(database_url)
    first = AuditLog(KEYRING)
    draft = Draft("org_a", "service:kyc-tier", "face.match", "customer:c1", "success", "r")
    with database.transaction() as session:
        first.append(session, [draft, draft])
    rotated = KEYRING.with_key("audit-2026-07", new_key(), make_primary=True)
    with database.transaction() as session:
        written = AuditLog(rotated).append(session, [draft])
    assert written[0].key_id == "audit-2026-07"
    assert AuditLog(rotated).verify(database.transaction).intact
    # Dropping the old key too early is reported, not silently accepted.
    report = AuditLog(rotated.without_key("audit-2026-01")).verify(database.transaction)
    assert (report.intact, report.first_bad_sequence, report.problem) == (False, 1, "UNKNOWN_KEY")
    database.dispose()


@pytest.mark.postgres
def test_cli_export_verifies_offline_and_catches_an_edited_file(
    postgres_url: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    database = open_database(postgres_url)
    with database.transaction() as session:
        AuditLog(KEYRING).append(
            session,
            [
                Draft(
                    f"org_{i % 2}",
                    "service:kyc-tier",
                    "face.match",
                    f"customer:c{i}",
                    "success",
                    "r",
                )
                for i in range(6)
            ],
        )
    database.dispose()
    keyring_file = tmp_path / "audit-keyring.json"
    write_keyring_file(keyring_file, KEYRING)
    export = tmp_path / "chain.jsonl"
    assert identity(["audit", "export", "--database-url", postgres_url, "--out", str(export)]) == 0
    assert len(export.read_text().splitlines()) == 6
    capsys.readouterr()
    assert identity(["audit", "verify", "--file", str(export), "--keyring", str(keyring_file)]) == 0
    lines = export.read_text().splitlines()
    edited = json.loads(lines[2])
    edited["subject"] = "customer:someone_else"
    lines[2] = json.dumps(edited)
    export.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert identity(["audit", "verify", "--file", str(export), "--keyring", str(keyring_file)]) == 1
    assert json.loads(capsys.readouterr().out)["first_bad_sequence"] == 3
    # A published anchor catches a cut tail even when the head row is rewound with it.
    monkeypatch.setenv("AUDIT_HMAC_KEYRING_FILE", str(keyring_file))
    capsys.readouterr()
    assert identity(["audit", "checkpoint", "--database-url", postgres_url]) == 0
    anchor = json.loads(capsys.readouterr().out)["anchor"]
    execute(
        postgres_url,
        "DELETE FROM audit_entries WHERE sequence = 6",
        "DELETE FROM audit_checkpoints",
        (
            "UPDATE audit_chain_head SET last_sequence = 5, last_hmac ="
            " (SELECT entry_hmac FROM audit_entries WHERE sequence = 5)"
        ),
    )
    assert (
        identity(["audit", "verify", "--database-url", postgres_url]) == 0
    )  # undetectable from inside alone
    capsys.readouterr()
    assert identity(["audit", "verify", "--database-url", postgres_url, "--anchor", anchor]) == 1
    assert json.loads(capsys.readouterr().out)["first_bad_sequence"] == 6


@pytest.mark.postgres
def test_retention_purge_removes_only_an_old_prefix_behind_a_checkpoint(postgres_url: str) -> None:
    database = open_database(postgres_url)
    draft = Draft("org_a", "service:kyc-tier", "face.match", "customer:c1", "success", "r")
    eight_years_ago = datetime.now(UTC) - timedelta(days=8 * 365)
    with database.transaction() as session:
        AuditLog(KEYRING, clock=lambda: eight_years_ago).append(session, [draft] * 4)
    with database.transaction() as session:
        AuditLog(KEYRING).append(session, [draft] * 4)
    audit_log = AuditLog(KEYRING)
    with pytest.raises(Exception) as refused:
        audit_log.purge(database.transaction, datetime.now(UTC) - timedelta(days=365))
    assert getattr(refused.value, "reason", "") == "INVALID_FIELD"
    report = audit_log.purge(database.transaction, datetime.now(UTC) - timedelta(days=7 * 365 + 10))
    assert report.purged == 4 and report.checkpoint.sequence == 4
    after = audit_log.verify(database.transaction)
    assert after.intact and after.from_sequence == 5 and after.entries_checked == 4
    # Deleting past the checkpoint is still caught.
    execute(postgres_url, "DELETE FROM audit_entries WHERE sequence = 5")
    broken = audit_log.verify(database.transaction)
    assert (broken.intact, broken.first_bad_sequence, broken.problem) == (False, 5, "ENTRY_MISSING")
    # A forged checkpoint is caught too.
    execute(postgres_url, "UPDATE audit_checkpoints SET entry_hmac = repeat('0', 64)")
    assert audit_log.verify(database.transaction).problem == "CHECKPOINT_INVALID"
    database.dispose()
