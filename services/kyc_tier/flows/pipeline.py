"""The capture pipeline every verification flow runs through.

    attempt -> assess -> decide -> record -> seal -> audit

attempt  The customer is resolved in the caller's organisation (another
         organisation's id is NOT_FOUND; an erased customer is refused) and
         the attempt is recorded as STARTED with an audit entry before any
         service is called (so a challenge or nonce liveness consumes always
         has both). From here on a refusal (replayed nonce, spent challenge,
         bad signature, undecodable image) finishes it as REFUSED with a
         denied audit entry, and nothing else is written; any other failure
         as INTERRUPTED (a crash: the recovery sweep does it at next start).
assess   The flow's calls to the mesh; it gets a `Subject` with the
         verification id chosen beforehand (so an enrollment can cite it) and
         the organisation's match threshold.
         In the attempt's first transaction, a request with a nonce (a capture
         bundle's, a match's) is checked against what that nonce already
         answered (`replays.py`):
         the same request gets its original verification, `replayed`; a
         different one NONCE_REPLAYED; a cut-short one is resumed.
decide   A pure function of the assessment: passed, failed or needs review
         (None), the reasons, and what the verification row records.
record   The verification row, its attempt row (and a review item when an
         analyst decides) ...
seal     ... the capture bundle sealed under the customer's bundle key for
         its retention ...
audit    ... and the audit entry, queued in the outbox; then the tier is
         settled from the history. All in ONE transaction, after which the
         outbox relay is woken.

A flow is a `Step` (what it records and audits), a request type, an
`assess(subject, request)` coroutine and a pure `decide(evidence, request)`;
`CapturePipeline.run` does the rest and answers with `Captured[evidence]`;
a flow whose requests carry a nonce also gives `recall(verification)`, the
evidence a replay answers with.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy.orm import Session

from identity_runtime import metrics
from identity_store.types import utcnow
from services.kyc_tier import bundles, customers, models, outbox, partners, records, webhook_events
from services.kyc_tier.flows import attempts, prechecks, replays
from services.kyc_tier.flows.attempts import interrupt_attempt
from services.kyc_tier.flows.capture import (
    Captured,
    Decision,
    Recorded,
    ReplayKey,
    Step,
    Subject,
)
from services.kyc_tier.flows.replays import nonce_replayed
from services.kyc_tier.org_policies import load as liveness_policy
from services.kyc_tier.pii import PiiVault
from services.kyc_tier.ports import Reason
from services.kyc_tier.store import Store

__all__ = [
    "CapturePipeline",
    "Captured",
    "Decision",
    "Recorded",
    "ReplayKey",
    "Step",
    "Subject",
    "interrupt_attempt",
    "nonce_replayed",
]

A = TypeVar("A")


class CaptureRequest(Protocol):
    @property
    def customer_id(self) -> str: ...


R = TypeVar("R", bound=CaptureRequest)

ExtraWrites = Callable[[Session, models.Customer, A], None]
Recall = Callable[[records.VerificationRecord], A]


class CapturePipeline:
    def __init__(self, store: Store, vault: PiiVault, clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.vault = vault
        self.clock = clock

    async def run(
        self,
        step: Step,
        org_id: str,
        request: R,
        assess: Callable[[Subject, R], Awaitable[A]],
        decide: Callable[[A, R], Decision],
        capture: bundles.Capture | None = None,
        extra_writes: ExtraWrites[A] | None = None,
        *,
        recall: Recall[A] | None = None,
        key: ReplayKey | None = None,
        precheck: prechecks.Precheck | None = None,
    ) -> Captured[A]:
        key = key or (ReplayKey.of(capture) if capture is not None else None)
        if key is not None and recall is None:
            raise TypeError("a flow whose requests carry a nonce must recall its evidence")
        checking = prechecks.start(precheck)  # beside `begin` (prechecks.py)
        begin = self.begin(step, org_id, request.customer_id, capture, key)
        subject = await prechecks.begun(checking, begin)
        if isinstance(subject, Recorded):  # this very request was answered before
            await prechecks.discard(checking)
            assert recall is not None
            evidence, seen = recall(subject.verification), subject.verification
            return Captured(evidence, replays.decision_of(seen), subject, True)
        attempt_id = subject.attempt_id
        async with self.attempt(step, org_id, request.customer_id, attempt_id):
            with replays.assessing():
                await prechecks.settle(checking, precheck, subject.resume)
                assessment = await assess(subject, request)
        # A refusal now (the customer's erasure was requested meanwhile) or a
        # failure finishes the attempt too.
        async with self.attempt(step, org_id, request.customer_id, attempt_id):
            decision = decide(assessment, request)
            recorded = await self.store.write(
                lambda s: self._write(s, step, subject, decision, assessment, extra_writes)
            )
        metrics.record_decision(
            step.kind, bool(decision.passed), (reason.code for reason in decision.reasons)
        )
        return Captured(assessment, decision, recorded)

    async def begin(
        self,
        step: Step,
        org_id: str,
        customer_id: str,
        capture: bundles.Capture | None = None,
        key: ReplayKey | None = None,
    ) -> Subject | Recorded:
        """The active customer of the organisation and what a capture needs of
        it; the attempt recorded as started, with its audit entry, before any
        service is called (a challenge or nonce consumed downstream is never
        without an attempt row and an audit entry, even if this process dies).
        A request with a nonce, or of a `one_at_a_time` step, locks the customer
        row meanwhile, so that `replays.admit` can refuse a second start.
        The original verification, nothing written, when this very request
        was answered before (`replays.answered`)."""
        now, attempt_id = self.clock(), records.new_id("att")

        def start(session: Session) -> Subject | Recorded:
            locked = bool(key) or step.one_at_a_time
            customer = records.load_customer(session, org_id, customer_id, for_update=locked)
            records.require_active(customer)
            seen = replays.answered(session, step.kind, org_id, customer_id, key, now)
            if seen is not None:
                return Recorded(seen, customer.tier)
            resume = replays.admit(session, step, org_id, customer_id, key, now)
            threshold = partners.match_threshold(session, org_id)
            policy = liveness_policy(session, org_id)
            started = (key.nonce, key.digest) if key else None
            records.start_attempt(session, org_id, customer_id, step.kind, attempt_id, started)
            outbox.record(
                session,
                org_id,
                "attempt.started",
                f"customer:{customer_id}",
                "success",
                details={"attempt_id": attempt_id, "kind": step.kind},
            )
            verification_id = records.new_id("ver")
            ids = (org_id, customer_id, verification_id)
            return Subject(*ids, threshold, capture, attempt_id, resume, key, policy)

        write = asyncio.ensure_future(self.store.write(start))
        try:
            return await asyncio.shield(write)
        except replays.REFUSED_AT_START:
            async with self.attempt(step, org_id, customer_id):
                raise
        except asyncio.CancelledError:
            # Cut short while starting (a deadline): the attempt may commit all
            # the same; it is finished as interrupted, so a retry resumes it.
            with contextlib.suppress(BaseException):
                await write
            await self._interrupt(step, org_id, customer_id, attempt_id, None)
            raise

    def attempt(
        self, step: Step, org_id: str, customer_id: str, attempt_id: str = ""
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Refusals inside the block finish the attempt (or add one) as refused,
        with an audit entry; an outage or any other failure finishes it as
        interrupted (flows/attempts.py)."""
        return attempts.scope(
            self.store,
            step,
            org_id,
            customer_id,
            attempt_id,
            lambda cause: self._interrupt(step, org_id, customer_id, attempt_id, cause),
        )

    async def _interrupt(
        self, step: Step, org_id: str, customer_id: str, attempt_id: str, cause: Reason | None
    ) -> None:
        await attempts.interrupt(self.store, step, org_id, customer_id, attempt_id, cause)

    def _write(
        self,
        session: Session,
        step: Step,
        subject: Subject,
        decision: Decision,
        assessment: A,
        extra_writes: ExtraWrites[A] | None,
    ) -> Recorded:
        """record -> seal -> audit, the flow's extra writes, the tier: one transaction."""
        customer = records.load_customer(
            session, subject.org_id, subject.customer_id, for_update=step.settles_tier
        )
        records.require_active(customer)
        row = self._record(session, customer, step, subject, decision)
        webhook_events.announce_verification(session, row)
        if subject.capture is not None:
            bundles.store_sealed(
                session,
                self.vault,
                customer,
                row.verification_id,
                subject.capture.sha256,
                subject.capture.bundle.raw,
                step.retention,
            )
        _audit(session, step, subject, decision)
        if extra_writes is not None:
            extra_writes(session, customer, assessment)
        if step.settles_tier:
            customers.settle(session, customer, "verification", verification_id=row.verification_id)
        return Recorded(records.verification_record(row), customer.tier)

    @staticmethod
    def _record(
        session: Session,
        customer: models.Customer,
        step: Step,
        subject: Subject,
        decision: Decision,
    ) -> models.Verification:
        capture = subject.capture
        input_hashes = dict(decision.input_hashes)
        if capture is not None:
            input_hashes = {"bundle": capture.sha256, **input_hashes}
        return records.add_verification(
            session,
            customer,
            step.kind,
            decision.passed,
            decision.reasons,
            scores=decision.scores,
            model_ids=decision.model_ids,
            input_hashes=input_hashes,
            details={"challenge_id": capture.challenge_id, **decision.details}
            if capture is not None
            else decision.details,
            nonce=subject.key.nonce if subject.key else None,
            bundle_sha256=subject.key.digest if subject.key else None,
            verification_id=subject.verification_id,
            review_details=decision.review_details,
            attempt_id=subject.attempt_id or None,
        )


def _audit(session: Session, step: Step, subject: Subject, decision: Decision) -> None:
    evidence = dict(decision.audit_evidence)
    if subject.capture is not None:
        evidence["bundle"] = subject.capture.sha256
    outbox.record(
        session,
        subject.org_id,
        step.action,
        f"customer:{subject.customer_id}",
        "success" if decision.passed else "denied",
        evidence_hashes=evidence,
        details={
            "verification_id": subject.verification_id,
            "reasons": ",".join(r.code for r in decision.reasons),
            **decision.audit_details,
        },
    )
