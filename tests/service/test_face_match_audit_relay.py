"""face-match's audit relay delivering its lifecycle transitions (and its
other audit entries: erasures, OAuth clients) to a real audit server (port
0), on both databases: one round's rows of one organisation go in one
AppendBatch, each under its own key that is never reused
(`face-match:<submission id>:fmt_<random>`); a redelivery (the answer lost
after the commit) is not chained twice; an audit service that is down leaves
every row pending; an erase loses no entry and is itself audited."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from identity_platform_api.face_match.v1 import oauth_pb2
from identity_runtime.audit_delivery import GrpcAuditSink, PendingEntry
from identity_runtime.clients import ClientFactory, ClientOptions
from services.audit import models as audit_models
from services.audit.log import AuditLog
from services.audit.service import SPEC as AUDIT
from services.face_match.audit import AuditRelay
from services.face_match.models import AuditOutbox, Job, Submission, Transition
from services.face_match.service import SPEC as FACE_MATCH
from services.face_match.submissions import Submissions
from tests.service.test_audit import KEYRING
from tests.service.test_audit import env as audit_env
from tests.service.test_face_match import SAME_PERSON_REFERENCE, SELFIE, Partner, S, refusal
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
    assert [e.entry_key for e in written] == [r.audit_key for r in rows]
    assert all(
        r.audit_key and r.audit_key.startswith(f"face-match:{r.submission_id}:fmt_") for r in rows
    )
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


def subjects(service, subject: str) -> list[audit_models.AuditEntry]:
    return [e for e in chain(service) if e.subject == subject]


async def test_transition_numbers_reused_after_an_erase_do_not_lose_entries(
    service, database_url: str
) -> None:
    """probe3 finding 1: on SQLite the numbers of the newest deleted
    transitions come back; the second submission's entries used to be
    dropped by the chain as already appended (same key)."""
    partner = Partner(service)
    audit = await start_service(AUDIT, audit_env(database_url))
    clients = clients_for(audit.address)
    relay = AuditRelay(service.core.database, clients, service.core.audit.clock)
    try:
        first = await partner.create("order-reuse-1")
        first_numbers = [r.sequence for r in transitions(service)]
        assert await relay.flush() == 2
        await partner.stub.EraseSubmission(S.EraseSubmissionRequest(correlation_id="order-reuse-1"))
        await relay.flush()
        second = await partner.create("order-reuse-2")
        rows = transitions(service)
        if database_url.startswith("sqlite"):
            # The loss's precondition: the same numbers again.
            assert [r.sequence for r in rows] == first_numbers
        assert await relay.flush() == 2
        assert all(r.audited_at is not None for r in transitions(service))
    finally:
        await clients.close()
        await audit.stop(0)
        await partner.close()
    entries = subjects(service, f"face_match_submission:{second.submission_id}")
    assert [e.action for e in entries] == ["face_match.created", "face_match.awaiting_upload"]
    assert [
        e.action for e in subjects(service, f"face_match_submission:{first.submission_id}")
    ] == [
        "face_match.created",
        "face_match.awaiting_upload",
        "face_match.erased",
    ]
    assert len({e.entry_key for e in chain(service)}) == len(chain(service)) == 5
    report = AuditLog(KEYRING).verify(service.core.database.transaction)
    assert report.intact and report.entries_checked == 5


async def test_an_erase_before_the_relay_ran_loses_no_entry_and_is_audited(
    service, database_url: str
) -> None:
    """probe3 finding 2: an erase right after confirm used to delete the
    transitions before the relay appended them, and wrote no entry itself."""
    partner, other = Partner(service), Partner(service, "org_fm_b")
    audit = await start_service(AUDIT, audit_env(database_url))
    clients = clients_for(audit.address)
    relay = AuditRelay(service.core.database, clients, service.core.audit.clock)
    try:
        created = await partner.create("order-erase-1")
        await partner.upload_both(created, SELFIE, SAME_PERSON_REFERENCE)
        await partner.stub.ConfirmSubmission(
            S.ConfirmSubmissionRequest(correlation_id="order-erase-1")
        )
        # Refused erasures (another organisation, an unknown id) write nothing.
        for caller, correlation_id in ((other, "order-erase-1"), (partner, "order-unknown")):
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await caller.stub.EraseSubmission(
                    S.EraseSubmissionRequest(correlation_id=correlation_id)
                )
            assert refusal(exc) == ("NOT_FOUND", "SUBMISSION_NOT_FOUND")
        assert [r.to_state for r in transitions(service)] == [
            "CREATED",
            "AWAITING_UPLOAD",
            "QUEUED",
        ]
        erased = await partner.stub.EraseSubmission(
            S.EraseSubmissionRequest(correlation_id="order-erase-1")
        )
        assert erased.submission_id == created.submission_id
        # Nothing relayed yet: the rows wait for the relay (ids and codes only).
        kept = transitions(service)
        assert [r.to_state for r in kept] == ["CREATED", "AWAITING_UPLOAD", "QUEUED", "ERASED"]
        assert all(r.audited_at is None for r in kept)

        def left(session) -> list[int]:
            return [
                session.scalar(
                    sa.select(sa.func.count())
                    .select_from(m)
                    .where(m.submission_id == created.submission_id)
                )
                for m in (Submission, Job)
            ]

        assert await service.core.database.run(left) == [0, 0]
        assert await relay.flush() == 4
        # Appended: now they go too.
        assert transitions(service) == []
    finally:
        await clients.close()
        await audit.stop(0)
        await partner.close()
        await other.close()
    entries = subjects(service, f"face_match_submission:{created.submission_id}")
    assert [e.action for e in entries] == [
        "face_match.created",
        "face_match.awaiting_upload",
        "face_match.queued",
        "face_match.erased",
    ]
    erasure = entries[-1]
    assert erasure.actor == "api_key:key_test"
    assert erasure.outcome == "success"
    assert erasure.tenant_id == "org_fm_a"
    # Ids and codes: never the partner's correlation id.
    assert erasure.details == {"from": "QUEUED", "to": "ERASED", "detail": "partner_request"}
    assert all("order-erase-1" not in str(e.details) for e in chain(service))


async def test_a_purged_result_is_audited_and_its_pending_transitions_kept(
    service, database_url: str
) -> None:
    partner = Partner(service)
    core = service.core
    later = datetime.now(UTC) + timedelta(days=10)
    clock_later = Submissions(
        core.database,
        core.bucket,
        core.submissions.signer,
        clock=lambda: later,
        upload_url_seconds=900,
        ttl_seconds=86_400,
        callback_signing_key="k" * 32,
    )
    audit = await start_service(AUDIT, audit_env(database_url))
    clients = clients_for(audit.address)
    relay = AuditRelay(core.database, clients, core.audit.clock)
    try:
        created = await partner.create("order-purge-1")
        assert await clock_later.expire_due() == 1
        # Not yet past the retention: nothing goes.
        assert await clock_later.purge_results(retention_days=3) == 0
        much_later = Submissions(
            core.database,
            core.bucket,
            core.submissions.signer,
            clock=lambda: later + timedelta(days=4),
            upload_url_seconds=900,
            ttl_seconds=86_400,
            callback_signing_key="k" * 32,
        )
        assert await much_later.purge_results(retention_days=3) == 1
        assert [r.to_state for r in transitions(service)] == [
            "CREATED",
            "AWAITING_UPLOAD",
            "EXPIRED",
            "ERASED",
        ]
        assert await relay.flush() == 4
        assert transitions(service) == []
    finally:
        await clients.close()
        await audit.stop(0)
        await partner.close()
    entries = subjects(service, f"face_match_submission:{created.submission_id}")
    assert [e.action for e in entries][-2:] == ["face_match.expired", "face_match.erased"]
    assert entries[-1].actor == "service:face-match"
    assert entries[-1].details == {"from": "EXPIRED", "to": "ERASED", "detail": "result_retention"}


async def test_oauth_client_creation_and_revocation_are_audited(service, database_url: str) -> None:
    """probe3 finding 3: issuing or revoking a partner credential is audited
    (ids and the actor, never the secret), as API keys are; a revocation
    refused, or one that changes nothing, writes no entry."""
    partner, other = Partner(service), Partner(service, "org_fm_b")
    audit = await start_service(AUDIT, audit_env(database_url))
    clients = clients_for(audit.address)
    relay = AuditRelay(service.core.database, clients, service.core.audit.clock)
    try:
        made = await partner.oauth.CreateClient(oauth_pb2.CreateClientRequest(name="backend"))
        client_id = made.client.client_id
        for caller, target in ((other, client_id), (partner, "fmci_" + "0" * 32)):
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await caller.oauth.RevokeClient(oauth_pb2.RevokeClientRequest(client_id=target))
            assert refusal(exc) == ("NOT_FOUND", "CLIENT_NOT_FOUND")
        await partner.oauth.RevokeClient(oauth_pb2.RevokeClientRequest(client_id=client_id))
        await partner.oauth.RevokeClient(oauth_pb2.RevokeClientRequest(client_id=client_id))
        assert await relay.flush() == 2
        assert await relay.flush() == 0

        def pending(session) -> int:
            return int(
                session.scalar(
                    sa.select(sa.func.count())
                    .select_from(AuditOutbox)
                    .where(AuditOutbox.audited_at.is_(None))
                )
                or 0
            )

        assert await service.core.database.run(pending) == 0
    finally:
        await clients.close()
        await audit.stop(0)
        await partner.close()
        await other.close()
    written = chain(service)
    assert [(e.action, e.subject, e.actor, e.outcome, e.tenant_id) for e in written] == [
        (
            "oauth_client.create",
            f"oauth_client:{client_id}",
            "api_key:key_test",
            "success",
            "org_fm_a",
        ),
        (
            "oauth_client.revoke",
            f"oauth_client:{client_id}",
            "api_key:key_test",
            "success",
            "org_fm_a",
        ),
    ]
    assert all(e.entry_key.startswith("face-match:audit:fma_") for e in written)
    assert all(made.client_secret not in str(e.details) for e in written)
    assert all("backend" not in str(e.details) for e in written)


async def test_rows_written_before_fm0005_keep_a_key_that_is_not_chained_twice(
    service, database_url: str
) -> None:
    """Upgrading: a row a relay had claimed under the old code keeps the old
    key (fm0005 sets it), so an entry already appended under it is not
    chained again; a row never claimed (no key) is keyed by its submission
    and sequence."""
    partner = Partner(service)
    audit = await start_service(AUDIT, audit_env(database_url))
    clients = clients_for(audit.address)
    relay = AuditRelay(service.core.database, clients, service.core.audit.clock)
    try:
        created = await partner.create("order-legacy-1")
        first, second = transitions(service)
        with service.core.database.transaction() as session:
            session.execute(
                sa.update(Transition)
                .where(Transition.sequence == first.sequence)
                .values(audit_key=f"face-match:outbox:{first.sequence}")
            )
            session.execute(
                sa.update(Transition)
                .where(Transition.sequence == second.sequence)
                .values(audit_key=None)
            )
        assert await relay.flush() == 2
        # The old relay's append whose answer was lost: appended again, not chained twice.
        with service.core.database.transaction() as session:
            session.execute(sa.update(Transition).values(audited_at=None, audit_claimed_until=None))
        assert await relay.flush() == 2
    finally:
        await clients.close()
        await audit.stop(0)
        await partner.close()
    assert [e.entry_key for e in chain(service)] == [
        f"face-match:outbox:{first.sequence}",
        f"face-match:{created.submission_id}:{second.sequence}",
    ]


async def test_an_erase_while_the_relay_delivers_leaves_no_row_and_loses_no_entry(
    service, database_url: str
) -> None:
    """The erase commits between the relay's claim and its settle: the rows
    it kept (claimed, not yet appended) are deleted by the settle; the
    erasure's own entry goes in the next round, then its row too."""
    partner = Partner(service)
    audit = await start_service(AUDIT, audit_env(database_url))
    clients = clients_for(audit.address)
    relay = AuditRelay(service.core.database, clients, service.core.audit.clock)

    class ErasingSink(CountingSink):
        async def deliver_batch(self, entries: list[PendingEntry]) -> list[str | None]:
            if not self.batch_calls:
                await partner.stub.EraseSubmission(
                    S.EraseSubmissionRequest(correlation_id="order-race-1")
                )
            return await super().deliver_batch(entries)

    relay.sink = ErasingSink(clients)
    try:
        created = await partner.create("order-race-1")
        assert await relay.flush() == 2
        assert [r.to_state for r in transitions(service)] == ["ERASED"]
        assert await relay.flush() == 1
        assert transitions(service) == []
    finally:
        await clients.close()
        await audit.stop(0)
        await partner.close()
    entries = subjects(service, f"face_match_submission:{created.submission_id}")
    assert [e.action for e in entries] == [
        "face_match.created",
        "face_match.awaiting_upload",
        "face_match.erased",
    ]
