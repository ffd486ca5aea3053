"""Run the gateway: `identity-gateway` or `python -m gateway`.

Settings come from `GATEWAY_*` variables (see gateway/settings.py). The
socket is bound before uvicorn starts, so a taken port fails at once with
a clear message (exit 1) and port 0 works. SIGTERM/SIGINT stop accepting,
let in-flight requests finish within `GATEWAY_SHUTDOWN_GRACE_SECONDS`, close
the channels and exit 0.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from gateway.server import serve
from gateway.settings import load
from identity_runtime import logs
from identity_runtime.settings import SettingsError


def _exit_cleanly(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def main(environ: dict[str, str] | None = None) -> None:
    try:
        settings = load(environ)
    except SettingsError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logs.configure("gateway", settings.log_level, settings.log_format)
    # uvicorn re-raises SIGTERM once its graceful shutdown is done; end with
    # exit status 0 then, as after Ctrl-C.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        asyncio.run(
            serve(
                settings,
                lambda address: print(f"gateway listening on http://{address}", flush=True),
            )
        )
    except OSError as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
