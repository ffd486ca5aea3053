"""The audit service verifies its own chain now and then, and counts each
verification in `identity_audit_chain_verifications_total{result}`, the
counter the `IdentityAuditChainBroken` alert reads.

A pass is incremental: it verifies the entries appended since the last
intact pass, linked to the last entry that pass reached (`AuditLog.verify`
from a sequence: every signed checkpoint in the database is still checked,
and one naming an entry in the range must agree with it). The head must
still reach the last sequence verified (and the newest signed checkpoint
this service wrote, if it writes them, so that this holds from start-up):
a head behind it means the newest entries were cut off and the head rewound
(TAIL_TRUNCATED). An incremental
pass does not re-read entries already verified, so an edit of one of those
is found by the next full pass: the first pass after start-up, every
`full_seconds`, and every pass after a broken one (a break is reported
again on every pass until the chain verifies, so the alert keeps firing).

A broken chain logs one error line per pass (the first bad sequence and
the problem code, nothing of the entries) and the service goes on serving:
appends are not stopped. Verification only reads, so several replicas may
each run it; each counts its own passes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from identity_runtime.logs import get_logger
from identity_runtime.tasks import WakeableLoop
from services.audit.chain import VerifyReport
from services.audit.trail import AuditTrail

log = get_logger("identity.audit.verifier")

DEFAULT_INTERVAL_SECONDS = 300.0
DEFAULT_FULL_SECONDS = 21_600.0


class ChainVerifier(WakeableLoop):
    def __init__(
        self,
        trail: AuditTrail,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        full_seconds: float = DEFAULT_FULL_SECONDS,
        *,
        signed_through: Callable[[], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            name="audit-chain-verifier",
            poll_seconds=interval_seconds,
            logger=log,
            failure_message="audit chain verification did not run; retrying next interval",
        )
        self.trail = trail
        self.full_seconds = full_seconds
        self.signed_through = signed_through or (lambda: 0)
        self.clock = clock
        # The furthest sequence an intact pass reached: the head must not fall behind it.
        self.verified_through = 0
        # The next pass is a full one (none ran yet, or the last found a break).
        self.full_needed = True
        self.full_at = 0.0
        # Set after every pass that ran to a result (for tests and probes).
        self.passed = asyncio.Event()
        self._lock = asyncio.Lock()

    def _full_due(self) -> bool:
        return self.full_needed or self.clock() - self.full_at >= self.full_seconds

    async def verify_once(self) -> VerifyReport:
        """One pass: verify, count, log a break; the report."""
        async with self._lock:
            full = self._full_due()
            # Read before the head is: whatever was signed then was committed.
            reached = max(self.verified_through, self.signed_through())
            started = self.clock()
            report = await self.trail.verify(
                1 if full else self.verified_through + 1, reaches=reached
            )
            if report.intact:
                self.verified_through = report.last_sequence
                if full:
                    self.full_needed = False
                    self.full_at = started
            else:
                self.full_needed = True
                log.error(
                    "audit chain broken",
                    sequence=report.first_bad_sequence,
                    problem=report.problem,
                )
            self.passed.set()
            return report

    async def run_pass(self) -> None:
        await self.verify_once()
