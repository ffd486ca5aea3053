"""Opened templates kept in memory for 1:1 verification (bounded, expiring).

Verify against a customer's reference otherwise reads the sealed template
and its wrapped data key from the database, unwraps the key (cached) and
opens the template (AES-GCM) on every call. This cache keeps the opened
active reference of recently verified customers, keyed by (organisation,
customer), under the key-handling rules:

- bounded: at most `capacity` entries (least recently used evicted first)
  and `ttl_seconds` per entry; capacity 0 disables it;
- wiped: an entry's vector is overwritten with zeros when it leaves the
  cache (eviction, expiry, invalidation), so the plaintext does not linger
  in this object's memory;
- invalidated on every write of the customer's references this replica
  makes (enroll/re-enrollment, retire, activate, erasure) and on every change
  it reads from other replicas and tools (`MatchingEngine.catch_up`:
  erasures and retirements elsewhere, breach revocation), so such a change
  reaches this cache within one sync interval;
- never logged: nothing here logs, and `repr` shows counts only.

A read that races an invalidation cannot put back what was just
invalidated: `ticket()` is taken before the database read and `put` drops
the entry when any invalidation happened since.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from identity_crypto.memory_cache import SecretCache

# The MATCHING_TEMPLATE_CACHE_* defaults.
DEFAULT_TEMPLATE_CACHE_SIZE = 100_000
DEFAULT_TEMPLATE_CACHE_TTL_SECONDS = 60.0


@dataclass(frozen=True, eq=False)
class OpenedReference:
    enrollment_id: str
    source: str
    vector: np.ndarray

    def __repr__(self) -> str:  # never the vector
        return f"OpenedReference({self.enrollment_id})"


class OpenedTemplates:
    def __init__(
        self,
        capacity: int = DEFAULT_TEMPLATE_CACHE_SIZE,
        ttl_seconds: float = DEFAULT_TEMPLATE_CACHE_TTL_SECONDS,
    ):
        self._cache: SecretCache[tuple[str, str], OpenedReference] = SecretCache(
            capacity, ttl_seconds, discard=_wipe
        )
        self.capacity, self.ttl = self._cache.capacity, self._cache.ttl
        # Bumped by every invalidation, under `_lock` (taken before the cache's own).
        self._epoch = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenedTemplates(entries={len(self._cache)}, capacity={self.capacity})"

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def enabled(self) -> bool:
        return self._cache.enabled

    def ticket(self) -> int:
        """Take before reading a reference from the database; give to `put`."""
        return self._epoch

    def get(self, org_id: str, customer_id: str) -> OpenedReference | None:
        return self._cache.get((org_id, customer_id))

    def put(self, org_id: str, customer_id: str, reference: OpenedReference, ticket: int) -> None:
        if not self.enabled:
            return
        # The cache's own copy: the caller's vector is not wiped under it.
        kept = OpenedReference(reference.enrollment_id, reference.source, reference.vector.copy())
        with self._lock:
            if ticket != self._epoch:
                _wipe(kept)  # an invalidation happened since the read: it may be stale
                return
            self._cache.put((org_id, customer_id), kept)

    def invalidate(self, org_id: str, customer_ids: set[str] | list[str] | tuple[str, ...]) -> None:
        """Drop (and wipe) these customers' entries."""
        with self._lock:
            self._epoch += 1
            self._cache.remove((org_id, customer_id) for customer_id in customer_ids)

    def clear(self) -> None:
        with self._lock:
            self._epoch += 1
            self._cache.clear()


def _wipe(reference: OpenedReference) -> None:
    reference.vector.fill(0.0)
