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
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

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
        self.capacity = max(0, capacity)
        self.ttl = ttl_seconds
        self._items: OrderedDict[tuple[str, str], tuple[OpenedReference, float]] = OrderedDict()
        self._epoch = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenedTemplates(entries={len(self._items)}, capacity={self.capacity})"

    def __len__(self) -> int:
        return len(self._items)

    @property
    def enabled(self) -> bool:
        return self.capacity > 0 and self.ttl > 0

    def ticket(self) -> int:
        """Take before reading a reference from the database; give to `put`."""
        return self._epoch

    def get(self, org_id: str, customer_id: str) -> OpenedReference | None:
        if not self.enabled:
            return None
        key = (org_id, customer_id)
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            reference, expires = item
            if expires < time.monotonic():
                del self._items[key]
                _wipe(reference)
                return None
            self._items.move_to_end(key)
            return reference

    def put(self, org_id: str, customer_id: str, reference: OpenedReference, ticket: int) -> None:
        if not self.enabled:
            return
        # The cache's own copy: the caller's vector is not wiped under it.
        kept = OpenedReference(reference.enrollment_id, reference.source, reference.vector.copy())
        key = (org_id, customer_id)
        with self._lock:
            if ticket != self._epoch:
                _wipe(kept)  # an invalidation happened since the read: it may be stale
                return
            old = self._items.pop(key, None)
            if old is not None:
                _wipe(old[0])
            self._items[key] = (kept, time.monotonic() + self.ttl)
            while len(self._items) > self.capacity:
                _, (evicted, _) = self._items.popitem(last=False)
                _wipe(evicted)

    def invalidate(self, org_id: str, customer_ids: set[str] | list[str] | tuple[str, ...]) -> None:
        """Drop (and wipe) these customers' entries."""
        with self._lock:
            self._epoch += 1
            for customer_id in customer_ids:
                item = self._items.pop((org_id, customer_id), None)
                if item is not None:
                    _wipe(item[0])

    def clear(self) -> None:
        with self._lock:
            self._epoch += 1
            for reference, _ in self._items.values():
                _wipe(reference)
            self._items.clear()


def _wipe(reference: OpenedReference) -> None:
    reference.vector.fill(0.0)
