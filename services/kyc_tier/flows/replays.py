"""Idempotent captures: what the capture pipeline does with a nonce.

Seed 001: "capture bundles dedupe on the bundle nonce within 24 h; repeated
submits with the same nonce return the original verification ID". Every
capture route (KTP capture, face liveness, face match, step-up) runs through
`CapturePipeline.run`, which applies these rules to the request's
`ReplayKey` (the nonce and the canonical digest: the bundle's
`bundle_sha256`, or a match request's digest):

- a verification with this nonce, of the same kind, for the same customer,
  with the same digest, within 24 h: the original verification is the
  answer, marked `replayed` (no model runs and nothing is written; the
  read-only protocol precheck, started beside the look-up, is dropped);
- a verification with this nonce and anything else: refused, ALREADY_EXISTS
  / NONCE_REPLAYED (an attempt refused, audited);
- an attempt with this nonce and digest still running (started under
  `IN_PROGRESS_FOR`, 45 s, ago: an assessment's calls end within 30 s), or
  one that finished while this request was on its way: ABORTED /
  CAPTURE_IN_PROGRESS; retrying shortly gives the original;
- for a step that is `one_at_a_time` (KTP capture, face liveness), any other
  capture of its kind for the customer still running: ABORTED /
  CAPTURE_IN_PROGRESS too (`refuse_concurrent`), with or without a nonce;
- an attempt with this nonce and digest cut short (a deadline, a crash:
  interrupted, or started long ago) after liveness may have spent the
  challenge and the nonce: this attempt resumes it (`Subject.resume`), and
  liveness re-decides that very bundle instead of refusing it, so a retry of
  the same bundle completes the capture with exactly one verification.

A flow may ask more of "the same request" than the key says: step-up answers
a replay only for the action and the reference it was decided for (neither
is in the bundle's digest), and refuses it for another (flows/step_up.py).
"""

from __future__ import annotations

import contextlib
import hashlib
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from identity_runtime import context as call_context
from identity_runtime.errors import AlreadyExists, DomainError, invalid_field
from services.kyc_tier import models, records
from services.kyc_tier.flows.capture import Decision, ReplayKey, Step

# How long an attempt's assessment may take: its calls' deadline is capped to
# it (`assessing`), so a started attempt older than IN_PROGRESS_FOR is cut
# short (a crash) and its retry resumes it, well within the life of the
# challenge it answers (2 minutes), not after the challenge has expired.
ASSESS_FOR = timedelta(seconds=30)
# A started attempt younger than this is taken to be still running.
IN_PROGRESS_FOR = ASSESS_FOR + timedelta(seconds=15)


def assessing() -> contextlib.AbstractContextManager[None]:
    """The current call's deadline, no later than ASSESS_FOR from now."""
    return call_context.deadline_within(ASSESS_FOR.total_seconds())


_CUT_SHORT = ("started", "interrupted")
_FINAL_REFUSAL = "refused"


class CaptureInProgress(DomainError, code="ABORTED", reason="CAPTURE_IN_PROGRESS"): ...


class NonceReplayed(AlreadyExists, reason="NONCE_REPLAYED"): ...


# What the transaction that starts an attempt refuses: recorded as a refused attempt.
REFUSED_AT_START = (CaptureInProgress, NonceReplayed)


def nonce_replayed() -> NonceReplayed:
    return NonceReplayed("this capture bundle's nonce was already used")


def capture_in_progress(
    message: str = "this capture is being processed by another call; retry shortly for its result",
) -> CaptureInProgress:
    return CaptureInProgress(message, metadata={"retry_after_seconds": 2})


def same_request(
    seen: records.VerificationRecord, kind: str, customer_id: str, key: ReplayKey, now: datetime
) -> bool:
    """Is the verification recorded under this nonce the answer to this request?"""
    return (
        seen.kind == kind
        and seen.customer_id == customer_id
        and seen.bundle_sha256 == key.digest
        and records.within_nonce_window(seen, now)
    )


def answered(
    session: Session,
    kind: str,
    org_id: str,
    customer_id: str,
    key: ReplayKey | None,
    now: datetime,
) -> records.VerificationRecord | None:
    """In the transaction that starts an attempt: the verification this very
    request was answered with, if it was; a nonce another request used is refused."""
    if key is None:
        return None
    row = records.verification_by_nonce(session, org_id, key.nonce)
    if row is None:
        return None
    seen = records.verification_record(row)
    if not same_request(seen, kind, customer_id, key, now):
        raise nonce_replayed()
    return seen


def claim(session: Session, org_id: str, key: ReplayKey, now: datetime) -> bool:
    """In the transaction that starts an attempt (the customer row locked):
    refuse while the same request runs; True when it resumes a cut-short one."""
    resume = False
    attempts = select(models.Attempt).where(
        models.Attempt.org_id == org_id, models.Attempt.nonce == key.nonce
    )
    for row in session.scalars(attempts):
        if row.bundle_sha256 != key.digest or row.outcome == _FINAL_REFUSAL:
            continue  # liveness judges another bundle's nonce; a refusal is final
        running = row.outcome == "started" and now - row.created_at < IN_PROGRESS_FOR
        if running or row.outcome not in _CUT_SHORT:
            raise capture_in_progress()
        resume = True
    return resume


def admit(
    session: Session,
    step: Step,
    org_id: str,
    customer_id: str,
    key: ReplayKey | None,
    now: datetime,
) -> bool:
    """In the transaction that starts an attempt (the customer row locked):
    `refuse_concurrent` for a `one_at_a_time` step, then `claim` for a request
    with a nonce; True when it resumes a cut-short attempt."""
    if step.one_at_a_time:
        refuse_concurrent(session, org_id, customer_id, step.kind, key, now)
    return claim(session, org_id, key, now) if key else False


def refuse_concurrent(
    session: Session, org_id: str, customer_id: str, kind: str, key: ReplayKey | None, now: datetime
) -> None:
    """Refuse while another capture of `kind` for this customer runs (a step
    that is `one_at_a_time`). The same request is `claim`'s to judge."""
    running = select(models.Attempt.nonce, models.Attempt.bundle_sha256).where(
        models.Attempt.org_id == org_id,
        models.Attempt.customer_id == customer_id,
        models.Attempt.kind == kind,
        models.Attempt.outcome == "started",
        models.Attempt.created_at > now - IN_PROGRESS_FOR,
    )
    for nonce, digest in session.execute(running):
        if key is None or (nonce, digest) != (key.nonce, key.digest):
            raise capture_in_progress(
                "another capture of this customer is being processed; retry once it is answered"
            )


def decision_of(seen: records.VerificationRecord) -> Decision:
    """The decision a recorded verification stands for (what a replay answers)."""
    passed = {"passed": True, "failed": False}.get(seen.outcome)
    return Decision(
        passed=passed,
        reasons=seen.reasons,
        scores=seen.scores,
        model_ids=seen.models,
        input_hashes=seen.input_hashes,
        details=seen.details,
    )


def request_key(nonce: str, *parts: str | bytes) -> ReplayKey | None:
    """The key of a request without a capture bundle (face match) that carries
    a nonce: its digest is the SHA-256 of `identity-request-v1`, then each part
    on its own line (text as it is, bytes as their lowercase hex SHA-256), each
    line ended by LF (CAPTURE_SIGNING.md, section 7)."""
    if not nonce:
        return None
    if not 8 <= len(nonce) <= 128:
        raise invalid_field("nonce", "must be 8 to 128 characters")
    lines = ["identity-request-v1"] + [
        hashlib.sha256(p).hexdigest() if isinstance(p, bytes) else p for p in parts
    ]
    return ReplayKey(nonce, hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest())
