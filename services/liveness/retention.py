"""liveness's retention sweep: expired flash challenges and remembered nonces
are purged in bounded batches (libs/identity_store/retention.py). A challenge
is kept until its expiry plus the replay window (its `consumed_nonce` is
still the replay evidence until then); a nonce until its own expiry."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from identity_runtime.logs import get_logger
from identity_store.db import Database
from identity_store.retention import delete_in_batches
from services.liveness.models import Challenge, UsedNonce

log = get_logger("identity.liveness.retention")


@dataclass
class LivenessSweeper:
    database: Database
    clock: Callable[[], datetime]
    nonce_retention: timedelta
    batch: int = 1000
    timer: Callable[[], float] = time.perf_counter
    # The longest batch transaction of the last run (seconds).
    longest_batch_seconds: float = 0.0

    def sweep(self) -> dict[str, int]:
        """One pass; counts per data class (never anything about a person)."""
        now = self.clock()
        challenges = delete_in_batches(
            self.database,
            Challenge.challenge_id,
            lambda: Challenge.expires_at <= now - self.nonce_retention,
            self.batch,
            self.timer,
        )
        nonces = delete_in_batches(
            self.database,
            UsedNonce.nonce,
            lambda: UsedNonce.expires_at <= now,
            self.batch,
            self.timer,
        )
        self.longest_batch_seconds = max(
            challenges.longest_batch_seconds, nonces.longest_batch_seconds
        )
        counts = {"challenges": challenges.rows, "nonces": nonces.rows}
        log.info("retention sweep", **counts)
        return counts
