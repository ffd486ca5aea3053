"""An erased customer's evidence hashes leave the audit chain, which still
verifies: kyc-tier's `customer.erase` entry (relayed after every earlier
entry about the customer) makes the audit service redact the evidence of
that tenant's entries about that customer, sealed by a redaction MAC and
recorded as `audit.evidence_redacted`. A real gRPC server, both databases."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select

from identity_cli.main import main as identity
from identity_crypto.keyring import write_keyring_file
from identity_platform_api.audit.v1 import audit_pb2
from identity_runtime.status import error_info, status_from_rpc_error
from identity_store.db import Database
from services.audit import models, redaction
from services.audit.chain import Draft
from services.audit.log import AuditLog
from services.audit.service import SPEC as AUDIT
from tests.service.test_audit import KEYRING, SHA, Client, env, execute, request
from tests.service.test_audit_batch import append_batch, batch
from tests.support import start_service
from tests.support.meshauth import caller_metadata

ERASED, KEPT = "customer:cus_erased", "customer:cus_kept"
PROBE = json.dumps({"probe": SHA})


@pytest.fixture
async def audit_service(database_url: str):
    server = await start_service(AUDIT, env(database_url))
    yield server, database_url
    await server.stop(0)


def erase(outcome: int = audit_pb2.OUTCOME_SUCCESS) -> audit_pb2.AppendRequest:
    return request(0, action="customer.erase", subject=ERASED, outcome=outcome, evidence_hashes={})


async def evidence_of(client: Client, subject: str) -> list[dict[str, str]]:
    found = await client.query(subject=subject, page_size=100)
    return [dict(e.evidence_hashes) for e in found.entries if e.action == "face.match"]


async def test_a_customers_erasure_redacts_its_evidence_and_the_chain_verifies(
    audit_service,
) -> None:
    server, url = audit_service
    async with Client(server) as client, Client(server, "org_b") as other_org:
        for i in range(3):
            await client.append(request(i, subject=ERASED))
            await client.append(request(i, subject=KEPT))
        await other_org.append(request(9, subject=ERASED))
        # A refused erasure (legal hold) redacts nothing.
        await client.append(erase(audit_pb2.OUTCOME_DENIED))
        assert await evidence_of(client, ERASED) == [{"probe": SHA}] * 3

        erased_entry = await client.append(erase())

        assert await evidence_of(client, ERASED) == [{}] * 3
        assert await evidence_of(client, KEPT) == [{"probe": SHA}] * 3
        assert await evidence_of(other_org, ERASED) == [{"probe": SHA}]
        [record] = (await client.query(action="audit.evidence_redacted")).entries
        assert (record.subject, record.actor) == (ERASED, "service:audit")
        assert dict(record.details) == {
            "entries": "3",
            "before_sequence": str(erased_entry.sequence),
        }
        assert record.sequence == erased_entry.sequence + 1
        report = await client.verify()
        assert report.intact and report.head_sequence == record.sequence
        # Another erasure entry (a redelivery without a key) redacts nothing more.
        await client.append(erase())
        assert len((await client.query(action="audit.evidence_redacted")).entries) == 1
        assert (await client.verify()).intact
    # Not stored either.
    database = Database(url)
    with database.transaction() as session:
        stored = session.scalars(
            select(models.AuditEntry.evidence_hashes).where(
                models.AuditEntry.tenant_id == "org_a", models.AuditEntry.subject == ERASED
            )
        ).all()
    database.dispose()
    assert stored and all(found == {} for found in stored)


async def test_evidence_delivered_after_the_erasure_is_redacted_on_arrival(
    audit_service,
) -> None:
    """Another kyc-tier replica's relay read an outbox row before the erasure
    blanked it and delivers it after `customer.erase`: its evidence does not
    stay, whether it comes alone or in the erasure's own batch."""
    server, _ = audit_service
    async with Client(server) as client:
        await client.append(request(1, subject=ERASED))
        erased_entry = await client.append(erase())

        late = await client.append(request(2, subject=ERASED))
        await append_batch(client, batch(request(3, subject=KEPT), request(4, subject=ERASED)))

        assert await evidence_of(client, ERASED) == [{}] * 3
        assert await evidence_of(client, KEPT) == [{"probe": SHA}]
        records = (await client.query(action="audit.evidence_redacted")).entries
        assert [(dict(r.details), r.subject) for r in reversed(records)] == [
            ({"entries": "1", "before_sequence": str(erased_entry.sequence)}, ERASED),
            ({"entries": "1", "before_sequence": str(late.sequence + 1)}, ERASED),
            ({"entries": "1", "before_sequence": str(late.sequence + 4)}, ERASED),
        ]
        assert (await client.verify()).intact


@pytest.mark.parametrize(
    ("issuer", "message"),
    [
        # Face Match appends its own entries; an erasure or a customer's legal
        # hold (which the audit service acts on) only kyc-tier may append.
        ("face-match", erase()),
        (
            "face-match",
            request(1, action="customer.legal_hold", subject=ERASED, details={"hold": "false"}),
        ),
        # The audit service's own records: no caller appends them.
        ("kyc-tier", request(1, action="audit.evidence_redacted", subject=ERASED)),
        ("kyc-tier", request(1, action="audit.legal_hold", subject="tenant:org_a")),
    ],
)
async def test_entries_the_audit_service_acts_on_come_only_from_their_owner(
    audit_service, issuer, message
) -> None:
    server, _ = audit_service
    async with Client(server) as client:
        await client.append(request(1, subject=ERASED))
        as_issuer = caller_metadata("org_a", issuer=issuer)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.stub.Append(message, metadata=as_issuer)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        info = error_info(status_from_rpc_error(caught.value))
        assert (info.reason, info.metadata["action"]) == ("CALLER_NOT_ALLOWED", message.action)
        refused = await client.stub.AppendBatch(batch(message), metadata=as_issuer)
        assert refused.results[0].refused.reason == "CALLER_NOT_ALLOWED"
        assert await evidence_of(client, ERASED) == [{"probe": SHA}]
        assert (await client.verify()).head_sequence == 1


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        # The redacted entry's details edited: its redaction MAC no longer holds.
        ("UPDATE audit_entries SET details = '{}' WHERE sequence = 1", "ENTRY_ALTERED"),
        # The evidence put back: a redacted entry holds none.
        (
            f"UPDATE audit_entries SET evidence_hashes = '{PROBE}' WHERE sequence = 1",
            "ENTRY_ALTERED",
        ),
        # The redaction MAC dropped: the original MAC does not cover the entry as kept.
        ("UPDATE audit_entries SET redaction_hmac = NULL WHERE sequence = 1", "ENTRY_ALTERED"),
        # A redaction forged without the key.
        (
            "UPDATE audit_entries SET evidence_hashes = '{}', redaction_hmac = :forged,"
            " redaction_key_id = 'audit-2026-01' WHERE sequence = 2",
            "ENTRY_ALTERED",
        ),
    ],
)
async def test_redacted_entries_stay_tamper_evident(audit_service, statement, problem) -> None:
    server, url = audit_service
    async with Client(server) as client:
        await client.append(request(1, subject=ERASED))
        await client.append(request(2, subject=KEPT))
        await client.append(erase())
        assert (await client.verify()).intact
        execute(url, statement, forged="0" * 64)
        report = await client.verify()
    assert (report.intact, report.problem) == (False, problem)


def test_the_cli_redacts_erasures_chained_before_and_an_export_still_verifies(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """Erasures chained by a release that did not redact: `identity audit
    redact-erased` does it once (idempotent); the export verifies offline."""

    def draft(subject: str, action: str = "face.match", evidence: bool = True) -> Draft:
        hashes = {"bundle": SHA} if evidence else {}
        return Draft("org_a", "service:kyc-tier", action, subject, "success", "r", hashes)

    database = Database(database_url)
    with monkeypatch.context() as older_release:
        older_release.setattr(redaction, "erasures", lambda entries: [])
        with database.transaction() as session:
            AuditLog(KEYRING).append(
                session, [draft(ERASED), draft(KEPT), draft(ERASED, "customer.erase", False)]
            )
    database.dispose()
    keyring = tmp_path / "audit.json"
    write_keyring_file(keyring, KEYRING)
    db = ["--database-url", database_url, "--keyring", str(keyring)]

    assert identity(["audit", "redact-erased", *db]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"customers_redacted": 1}
    assert identity(["audit", "redact-erased", *db]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"customers_redacted": 0}

    export = tmp_path / "chain.jsonl"
    assert identity(["audit", "export", "--database-url", database_url, "--out", str(export)]) == 0
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert [line["action"] for line in lines] == [
        "face.match",
        "face.match",
        "customer.erase",
        "audit.evidence_redacted",
    ]
    assert lines[0]["evidence_hashes"] == {} and lines[0]["redaction_hmac"]
    assert lines[1]["evidence_hashes"] == {"bundle": SHA} and "redaction_hmac" not in lines[1]
    capsys.readouterr()
    assert identity(["audit", "verify", "--file", str(export), "--keyring", str(keyring)]) == 0
    assert identity(["audit", "verify", *db]) == 0
