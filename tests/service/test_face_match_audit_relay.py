"""face-match's audit relay delivering its lifecycle transitions to a real
audit server (port 0), on both databases: one round's rows of one
organisation go in one AppendBatch, keyed `face-match:outbox:<sequence>`; a
redelivery (the answer lost after the commit) is not chained twice; an audit
service that is down leaves every row pending."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from identity_runtime.audit_delivery import GrpcAuditSink, PendingEntry
from identity_runtime.clients import ClientFactory, ClientOptions
from services.audit import models as audit_models
from services.audit.log import AuditLog
from services.audit.service import SPEC as AUDIT
from services.face_match.audit import AuditRelay
from services.face_match.models import Transition
from services.face_match.service import SPEC as FACE_MATCH
from tests.service.test_audit import KEYRING
from tests.service.test_audit import env as audit_env
from tests.service.test_face_match import SAME_PERSON_REFERENCE, Partner, S
from tests.support import start_service
from tests.support.face_match import env
from tests.support.meshauth import signer


class CountingSink(GrpcAuditSink):
    """The real gRPC sink, counting its AppendBatch calls and their sizes."""

    def __init__(self, clients: ClientFactory) -> None:
        super().__init__(
            clients, service_actor="service:face-match", key_prefix="face-match:outbox"
        )
        self.batch_calls: list[int] = []

    async def deliver_batch(self, entries: list[PendingEntry]) -> list[str | None]:
        self.batch_calls.append(len(entries))
        return await super().deliver_batch(entries)


@pytest.fixture
async def service(database_url: str, tmp_path: Path):
    server = await start_service(FACE_MATCH, env(database_url, tmp_path / "bucket"))
    # Stop the service's own loops: the relay under test is the only one.
    server.core._stop.set()
    await asyncio.gather(*server.core._tasks, return_exceptions=True)
    yield server
    await server.stop(0)


def clients_for(address: str) -> ClientFactory:
    return ClientFactory(
        {"audit": address}, ClientOptions(default_timeout_seconds=30), signer=signer("face-match")
    )


def dead_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def transitions(service) -> list[Transition]:
    with service.core.database.transaction() as session:
        rows = session.scalars(sa.select(Transition).order_by(Transition.sequence)).all()
        session.expunge_all()
    return list(rows)


def chain(service) -> list[audit_models.AuditEntry]:
    with service.core.database.transaction() as session:
        rows = session.scalars(
            sa.select(audit_models.AuditEntry).order_by(audit_models.AuditEntry.sequence)
        ).all()
        session.expunge_all()
    return list(rows)


async def test_a_round_goes_in_one_append_batch_and_a_redelivery_is_not_chained_twice(
    service, database_url: str
) -> None:
    partner = Partner(service)
    audit = await start_service(AUDIT, audit_env(database_url))
    clients = clients_for(audit.address)
    try:
        created = await partner.create("order-relay-1")
        pending = transitions(service)
        assert len(pending) >= 2
        relay = AuditRelay(service.core.database, clients, service.core.audit.clock)
        sink = CountingSink(clients)
        relay.sink = sink
        assert await relay.flush() == len(pending)
        assert sink.batch_calls == [len(pending)]
        assert all(row.audited_at is not None for row in transitions(service))
        # The audit service committed but face-match never heard (and the
        # claim ran out): the rows are pending again, and one more is new.
        with service.core.database.transaction() as session:
            session.execute(sa.update(Transition).values(audited_at=None, audit_claimed_until=None))
        await partner.create("order-relay-2")
        rows = transitions(service)
        assert len(rows) > len(pending)
        assert await relay.flush() == len(rows)
        assert sink.batch_calls == [len(pending), len(rows)]
    finally:
        await clients.close()
        await audit.stop(0)
        await partner.close()
    written = chain(service)
    assert [e.entry_key for e in written] == [f"face-match:outbox:{r.sequence}" for r in rows]
    assert {e.tenant_id for e in written} == {"org_fm_a"}
    assert [e.action for e in written] == [f"face_match.{r.to_state.lower()}" for r in rows]
    assert written[0].subject == f"face_match_submission:{rows[0].submission_id}"
    assert rows[0].submission_id == created.submission_id
    assert written[0].details["to"] == rows[0].to_state
    report = AuditLog(KEYRING).verify(service.core.database.transaction)
    assert report.intact and report.entries_checked == len(rows)


async def test_an_audit_service_that_is_down_leaves_every_row_pending(service) -> None:
    partner = Partner(service)
    clients = clients_for(dead_address())
    try:
        await partner.create("order-relay-3")
        relay = AuditRelay(service.core.database, clients, service.core.audit.clock)
        assert await relay.flush() == 0
    finally:
        await clients.close()
        await partner.close()
    rows = transitions(service)
    assert rows and all(row.audited_at is None for row in rows)


async def test_an_upload_refused_at_confirm_reaches_the_chain_denied(
    service, database_url: str
) -> None:
    partner = Partner(service)
    audit = await start_service(AUDIT, audit_env(database_url))
    clients = clients_for(audit.address)
    try:
        created = await partner.create("order-relay-4")
        await partner.upload_both(created, b"just some text", SAME_PERSON_REFERENCE)
        with pytest.raises(grpc.aio.AioRpcError):
            await partner.stub.ConfirmSubmission(
                S.ConfirmSubmissionRequest(correlation_id="order-relay-4")
            )
        relay = AuditRelay(service.core.database, clients, service.core.audit.clock)
        assert await relay.flush() == len(transitions(service))
    finally:
        await clients.close()
        await audit.stop(0)
        await partner.close()
    [refused] = [e for e in chain(service) if e.action == "face_match.upload_refused"]
    assert refused.outcome == "denied"
    assert refused.subject == f"face_match_submission:{created.submission_id}"
    assert refused.details == {
        "from": "AWAITING_UPLOAD",
        "to": "AWAITING_UPLOAD",
        "detail": "upload refused: selfie IMAGE_UNDECODABLE",
    }
