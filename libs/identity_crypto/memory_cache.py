"""A bounded, expiring, thread-safe cache for secret material held in memory.

Unwrapped data keys (identity_crypto.datakeys) and opened face templates
(services/matching/opened.py) are both kept this way: at most `capacity`
entries, least recently used evicted first, each for at most `ttl_seconds`;
capacity or ttl 0 disables the cache. Every value that leaves the cache
(expired, replaced, evicted, removed, cleared) is handed to `discard`, so a
mutable secret can be overwritten rather than left to linger in memory.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _keep(_value: object) -> None:
    """The default `discard`: immutable values (bytes) cannot be wiped."""


class SecretCache(Generic[K, V]):
    def __init__(
        self, capacity: int, ttl_seconds: float, discard: Callable[[V], None] = _keep
    ) -> None:
        self.capacity = max(0, capacity)
        self.ttl = ttl_seconds
        self._discard = discard
        self._items: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # counts only, never a key or a value
        return f"SecretCache(entries={len(self._items)}, capacity={self.capacity})"

    def __len__(self) -> int:
        return len(self._items)

    @property
    def enabled(self) -> bool:
        return self.capacity > 0 and self.ttl > 0

    def get(self, key: K) -> V | None:
        if not self.enabled:
            return None
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            value, expires = item
            if expires < time.monotonic():
                del self._items[key]
                self._discard(value)
                return None
            self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Keep `value` (the cache's own: it is discarded when it leaves)."""
        if not self.enabled:
            self._discard(value)
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._discard(old[0])
            self._items[key] = (value, time.monotonic() + self.ttl)
            while len(self._items) > self.capacity:
                _, (evicted, _) = self._items.popitem(last=False)
                self._discard(evicted)

    def remove(self, keys: Iterable[K]) -> None:
        with self._lock:
            for key in keys:
                item = self._items.pop(key, None)
                if item is not None:
                    self._discard(item[0])

    def clear(self) -> None:
        with self._lock:
            for value, _ in self._items.values():
                self._discard(value)
            self._items.clear()
