"""Face Match workers without the API: `python -m services.face_match.worker_process`
(console script `identity-face-match-worker`).

Reads the same `FACE_MATCH_*` settings as the service, runs
`FACE_MATCH_WORKERS` queue workers (at least one), the callback relay and the
image purge, and stops cleanly on SIGTERM or Ctrl-C: a job in flight is
finished, or its lease simply expires and another worker takes it. Workers
scale out by running more of these processes (or face-match pods); they
share nothing but the database (and the object store).
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import sys

from identity_runtime import logs, mesh
from identity_runtime.settings import SettingsError, load_settings
from services.face_match.bootstrap import build
from services.face_match.settings import FaceMatchSettings


async def run(settings: FaceMatchSettings) -> None:
    core = await build(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"face-match workers: {len(core.workers)} running", flush=True)
    await stop.wait()
    await core.close()


def main() -> None:
    try:
        settings = load_settings(FaceMatchSettings, mesh.FACE_MATCH.env_prefix)
    except SettingsError as exc:
        print("face-match workers: " + "; ".join(exc.problems), file=sys.stderr)
        raise SystemExit(2) from None
    if settings.workers < 1:
        settings = dataclasses.replace(settings, workers=1)
    logs.configure("face-match-worker", settings.log_level, settings.log_format)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
