"""Reading a submission: its status, and its details with every transition
and where its callback stands."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.face_match.audit import CALLBACK_RECORD
from services.face_match.models import Callback, Transition
from services.face_match.submissions.base import SubmissionsBase
from services.face_match.submissions.views import View, view_of


class Reads(SubmissionsBase):
    async def status(self, org_id: str, correlation_id: str) -> View:
        return await self.database.run(lambda s: view_of(self._current(s, org_id, correlation_id)))

    async def details(self, org_id: str, correlation_id: str) -> View:
        def work(session: Session) -> View:
            row = self._current(session, org_id, correlation_id)
            transitions = session.execute(
                select(Transition.to_state, Transition.at)
                .where(
                    Transition.submission_id == row.submission_id,
                    # Callback audit records are not lifecycle transitions.
                    ~Transition.detail.startswith(CALLBACK_RECORD, autoescape=True),
                )
                .order_by(Transition.sequence)
            ).all()
            callback = session.scalars(
                select(Callback).where(Callback.submission_id == row.submission_id)
            ).one_or_none()
            return view_of(row, [(state, at) for state, at in transitions], callback)

        return await self.database.run(work)
