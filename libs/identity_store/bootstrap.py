"""What the services' bootstraps share about their database.

`build(settings, *, overrides=...)` takes the ports a test gives instead of
the ones built from settings: each service's `<X>Overrides` extends one of
the records here with its own ports (a port left None is built for real).
A core over its own database extends `StoredCore`, which closes the retention
sweep, the service's own work and the database in that order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from identity_runtime.server import Core
from identity_runtime.settings import DatabaseSettings
from identity_store.db import Database
from identity_store.retention import PeriodicSweep
from identity_store.types import utcnow


@dataclass(frozen=True)
class DatabaseOverrides:
    """Ports to use instead of the ones built from settings (None = build the real one)."""

    # The database holding the service's tables (migrated to head).
    database: Database | None = None

    def open_database(self, settings: DatabaseSettings) -> Database:
        """The given database, else the one the settings name."""
        return self.database or Database(settings.database_url, settings.database_pool_size)


@dataclass(frozen=True)
class DatabaseAndClockOverrides(DatabaseOverrides):
    # The time the service records, and judges expiries, by.
    clock: Callable[[], datetime] | None = None

    def clock_or_utcnow(self) -> Callable[[], datetime]:
        return self.clock or utcnow


@dataclass(kw_only=True)
class StoredCore(Core):
    """A core over its own database, swept by `retention` (if any)."""

    database: Database
    retention: PeriodicSweep | None = None

    async def stop_work(self) -> None:
        """What the service stops after the sweep, before the database closes."""

    async def close(self) -> None:
        if self.retention is not None:
            await self.retention.stop()
        await self.stop_work()
        self.database.dispose()
