"""kyc-tier's outbox relay delivering through the real gRPC sink to a real
audit server (port 0), on both databases: each organisation's run of a claimed
batch goes in one AppendBatch, in order; an entry the audit service refuses
stays in the outbox with its reason without losing the others; an audit
service that is down leaves every entry pending, to go out in order later."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from identity_runtime import context
from identity_runtime.clients import ClientFactory, ClientOptions
from services.audit import models as audit_models
from services.audit.log import AuditLog
from services.audit.service import SPEC as AUDIT
from services.kyc_tier import models, outbox
from services.kyc_tier.adapters import GrpcAuditSink
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.outbox import BatchAuditSink, OutboxRelay
from tests.service.test_audit import KEYRING, env
from tests.support import start_service
from tests.support.kyc_fakes import KycFakes, fake_kyc_core, new_org
from tests.support.meshauth import signer


class CountingSink(GrpcAuditSink):
    """The real gRPC sink, counting its AppendBatch calls."""

    def __init__(self, clients: ClientFactory) -> None:
        super().__init__(clients)
        self.batch_calls: list[int] = []

    async def deliver_batch(self, entries: list[outbox.PendingEntry]) -> list[str | None]:
        self.batch_calls.append(len(entries))
        return await super().deliver_batch(entries)


@pytest.fixture
async def core(database_url: str) -> AsyncIterator[KycTierCore]:
    async with fake_kyc_core(database_url, KycFakes()) as built:
        await built.relay.stop()  # only the relay under test delivers
        yield built


def clients_for(address: str) -> ClientFactory:
    return ClientFactory(
        {"audit": address}, ClientOptions(default_timeout_seconds=30), signer=signer("kyc-tier")
    )


def dead_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


async def queue(core: KycTierCore, rows: list[tuple[str, str, dict[str, str]]]) -> None:
    def work(session: object) -> None:
        for n, (org_id, subject, details) in enumerate(rows):
            bound = context.bind(context.CallContext(request_id=f"req-{subject}-{n}"))
            try:
                outbox.record(session, org_id, "test.relay", subject, "success", details=details)  # type: ignore[arg-type]
            finally:
                context.reset(bound)

    await core.database.run(work)


def outbox_rows(core: KycTierCore) -> list[models.AuditOutbox]:
    with core.database.transaction() as session:
        rows = session.scalars(sa.select(models.AuditOutbox).order_by(models.AuditOutbox.id)).all()
        session.expunge_all()
    return list(rows)


def chain(core: KycTierCore) -> list[audit_models.AuditEntry]:
    with core.database.transaction() as session:
        rows = session.scalars(
            sa.select(audit_models.AuditEntry).order_by(audit_models.AuditEntry.sequence)
        ).all()
        session.expunge_all()
    return list(rows)


async def test_a_claimed_batch_goes_in_one_call_per_organisation_run_and_a_refusal_stays_behind(
    core: KycTierCore, database_url: str
) -> None:
    server = await start_service(AUDIT, env(database_url))
    clients = clients_for(server.address)
    try:
        sink = CountingSink(clients)
        assert isinstance(sink, BatchAuditSink)
        await queue(
            core,
            [
                ("org_a", "test:a1", {}),
                ("org_a", "test:a2", {"Bad Key": "refused by the audit service"}),
                ("org_a", "test:a3", {}),
                ("org_b", "test:b1", {}),
                ("org_b", "test:b2", {}),
                ("org_a", "test:a4", {}),
            ],
        )
        delivered = await OutboxRelay(core.database, sink).flush()
    finally:
        await clients.close()
        await server.stop(0)
    assert delivered == 5
    assert sink.batch_calls == [3, 2, 1]  # org_a, org_b, org_a: in order
    rows = outbox_rows(core)
    refused = [r for r in rows if r.subject == "test:a2"][0]
    assert (refused.delivered_at, refused.rejected_reason) == (None, "INVALID_FIELD")
    assert all(r.delivered_at is not None for r in rows if r.subject != "test:a2")
    assert all(r.claimed_until is None for r in rows if r.delivered_at is None)
    written = chain(core)
    assert [(e.tenant_id, e.subject) for e in written] == [
        ("org_a", "test:a1"),
        ("org_a", "test:a3"),
        ("org_b", "test:b1"),
        ("org_b", "test:b2"),
        ("org_a", "test:a4"),
    ]
    by_subject = {r.subject: r.request_id for r in rows}
    assert all(e.request_id == by_subject[e.subject] for e in written)
    assert all(e.actor == "service:kyc-tier" for e in written)
    report = AuditLog(KEYRING).verify(core.database.transaction)
    assert report.intact and report.entries_checked == 5


async def test_an_audit_service_that_is_down_leaves_every_entry_for_a_later_ordered_delivery(
    core: KycTierCore, database_url: str
) -> None:
    await queue(core, [("org_a", f"test:{n}", {}) for n in range(4)])
    down = clients_for(dead_address())
    try:
        assert await OutboxRelay(core.database, GrpcAuditSink(down)).flush() == 0
    finally:
        await down.close()
    rows = outbox_rows(core)
    assert [r.delivered_at for r in rows] == [None] * 4
    assert [r.claimed_until for r in rows] == [None] * 4  # released: the next pass retries
    assert [r.attempts for r in rows] == [1, 0, 0, 0]
    assert chain(core) == []

    server = await start_service(AUDIT, env(database_url))
    clients = clients_for(server.address)
    try:
        assert await OutboxRelay(core.database, GrpcAuditSink(clients)).flush() == 4
    finally:
        await clients.close()
        await server.stop(0)
    assert [e.subject for e in chain(core)] == [f"test:{n}" for n in range(4)]
    assert all(r.delivered_at is not None for r in outbox_rows(core))


async def test_a_batch_delivered_again_after_a_lost_answer_is_not_chained_twice(
    core: KycTierCore, database_url: str
) -> None:
    server = await start_service(AUDIT, env(database_url))
    clients = clients_for(server.address)
    try:
        await queue(core, [("org_a", f"test:{n}", {}) for n in range(3)])
        relay = OutboxRelay(core.database, GrpcAuditSink(clients))
        assert await relay.flush() == 3
        # The audit service committed but kyc-tier never heard (and the lease
        # ran out): the rows are pending again.
        with core.database.transaction() as session:
            session.execute(
                sa.update(models.AuditOutbox).values(delivered_at=None, claimed_until=None)
            )
        await queue(core, [("org_a", "test:3", {})])
        assert await relay.flush() == 4
    finally:
        await clients.close()
        await server.stop(0)
    written = chain(core)
    assert [e.subject for e in written] == [f"test:{n}" for n in range(4)]
    ids = [r.id for r in outbox_rows(core)]
    assert [e.entry_key for e in written] == [f"kyc-tier:outbox:{i}" for i in ids]
    report = AuditLog(KEYRING).verify(core.database.transaction)
    assert report.intact and report.entries_checked == 4


async def test_an_erasure_relayed_to_the_real_audit_service_redacts_the_customers_evidence(
    database_url: str,
) -> None:
    """End to end: the customer's capture entries reach the chain with their
    bundle digests; the erasure (outbox blanked, then `customer.erase`
    relayed after them) leaves none in the chain, which still verifies."""
    from tests.integration.test_kyc_trust import onboarded

    fakes = KycFakes()
    server = await start_service(AUDIT, env(database_url))
    clients = clients_for(server.address)
    try:
        async with fake_kyc_core(database_url, fakes) as core:
            await core.relay.stop()
            relay = OutboxRelay(core.database, GrpcAuditSink(clients))
            org_id = await new_org(core)
            erased_id = await onboarded(core, fakes, org_id)
            kept_id = await onboarded(core, fakes, org_id)
            await relay.flush()

            def evidence(customer_id: str) -> list[dict[str, str]]:
                about = [e for e in chain(core) if e.subject == f"customer:{customer_id}"]
                return [dict(e.evidence_hashes) for e in about if e.evidence_hashes]

            assert evidence(erased_id) and evidence(kept_id)
            kept_before = evidence(kept_id)

            await core.erasure.erase(org_id, erased_id, "data_subject_request")
            await relay.flush()

            assert evidence(erased_id) == []
            assert evidence(kept_id) == kept_before
            actions = [e.action for e in chain(core) if e.subject == f"customer:{erased_id}"]
            assert actions[-2:] == ["customer.erase", "audit.evidence_redacted"]
            report = AuditLog(KEYRING).verify(core.database.transaction)
            assert report.intact
    finally:
        await clients.close()
        await server.stop(0)
