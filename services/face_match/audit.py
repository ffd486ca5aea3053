"""Every lifecycle transition goes into the platform's audit chain.

A transition row is written in the transaction that changes the state
(submissions.record_transition); it is also the outbox of its audit entry.
`AuditRelay` appends the rows not yet audited to the audit service, oldest
first, as face-match itself (a mesh service: its caller token says "mesh")
for the submission's organisation: action `face_match.<state>` (e.g.
`face_match.completed`), subject `face_match_submission:<id>`, details
`{from, to, detail}`: ids and codes, never an image or a score. Delivery is
at least once; several processes may relay at once (rows are claimed with
FOR UPDATE SKIP LOCKED for a short lease), and a failed append leaves the row
for the next round.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

import grpc
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from identity_platform_api.audit.v1 import audit_pb2, audit_pb2_grpc
from identity_runtime import context
from identity_runtime.clients import ClientFactory
from identity_runtime.errors import DomainError
from identity_runtime.logs import get_logger
from identity_runtime.status import remote_error
from identity_store.db import Database
from services.face_match.models import Transition

log = get_logger("face_match.audit")
# Actors the audit chain accepts as they are; workers and the expiry sweep
# act as the service.
_ACTOR = re.compile(r"(api_key|oauth_client|console_user|service):[A-Za-z0-9_.\-]{1,100}")
# Refusals a retry cannot fix: the entry is logged and skipped, not retried for ever.
_PERMANENT = frozenset({"INVALID_ARGUMENT", "FAILED_PRECONDITION"})
BATCH = 100
CLAIM = timedelta(seconds=30)


class AuditRelay:
    def __init__(self, database: Database, clients: ClientFactory, clock: Callable[[], datetime]):
        self.database = database
        self.stub = clients.stub("audit", audit_pb2_grpc.AuditServiceStub)
        self.clock = clock

    def _claim(self, session: Session) -> list[Transition]:
        now = self.clock()
        rows = list(
            session.scalars(
                select(Transition)
                .where(
                    Transition.audited_at.is_(None),
                    or_(
                        Transition.audit_claimed_until.is_(None),
                        Transition.audit_claimed_until < now,
                    ),
                )
                .order_by(Transition.sequence)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        )
        for row in rows:
            row.audit_claimed_until = now + CLAIM
        # Write the claims before handing the rows out detached.
        session.flush()
        session.expunge_all()
        return rows

    async def flush(self) -> int:
        """Append what is pending; how many entries were appended."""
        appended: list[int] = []
        try:
            for row in await self.database.run(self._claim):
                try:
                    await self._append(row)
                except DomainError as error:
                    if error.code not in _PERMANENT:
                        raise
                    log.error(
                        "face_match.audit_refused", sequence=row.sequence, reason=error.reason
                    )
                appended.append(row.sequence)
        finally:
            if appended:
                now = self.clock()
                await self.database.run(
                    lambda s: s.execute(
                        update(Transition)
                        .where(Transition.sequence.in_(appended))
                        .values(audited_at=now)
                    )
                )
        return len(appended)

    async def _append(self, row: Transition) -> None:
        request = audit_pb2.AppendRequest(
            actor=row.actor if _ACTOR.fullmatch(row.actor) else "service:face-match",
            action=f"face_match.{row.to_state.lower()}",
            subject=f"face_match_submission:{row.submission_id}",
            outcome=audit_pb2.OUTCOME_FAILED
            if row.to_state == "FAILED"
            else audit_pb2.OUTCOME_SUCCESS,
            details={
                "from": row.from_state or "-",
                "to": row.to_state,
                "detail": row.detail or "-",
            },
        )
        bound = context.bind(
            context.CallContext(
                request_id=context.new_request_id(), org_id=row.org_id, actor=request.actor
            )
        )
        try:
            await self.stub.Append(request)
        except grpc.aio.AioRpcError as exc:
            raise remote_error(exc, "audit") from None
        finally:
            context.reset(bound)
