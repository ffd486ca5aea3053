"""matching's retention sweep: an enrollment retired on erasure (its template
already shredded) keeps its row for the regulated window (7 years after the
retirement), then the row goes, in bounded batches. Only erasure
retirements are swept: kyc-tier refuses an erasure under legal hold, so no
held customer's row is ever due here; other retirements stay with the
customer's record."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from identity_runtime.logs import get_logger
from identity_store.db import Database
from identity_store.retention import delete_in_batches, period
from identity_store.types import utcnow
from services.matching.models import Enrollment

log = get_logger("identity.matching.retention")


@dataclass
class MatchingSweeper:
    database: Database
    clock: Callable[[], datetime] = utcnow
    batch: int = 1000
    timer: Callable[[], float] = time.perf_counter
    longest_batch_seconds: float = 0.0

    def sweep(self) -> dict[str, int]:
        cutoff = self.clock() - period("erased_enrollments")
        stats = delete_in_batches(
            self.database,
            Enrollment.enrollment_id,
            lambda: (Enrollment.retire_reason == "erasure") & (Enrollment.retired_at <= cutoff),
            self.batch,
            self.timer,
        )
        self.longest_batch_seconds = stats.longest_batch_seconds
        counts = {"erased_enrollments": stats.rows}
        log.info("retention sweep", **counts)
        return counts
