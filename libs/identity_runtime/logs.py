"""Structured JSON logs that carry the request id and tenant and never PII.

Every record passes through `scrub_personal_data`: keys that name personal
or biometric data are dropped, and any run of 16 digits (a NIK) in a string
value is masked. Callers still must not log such values; this is the net
under the rope.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from identity_runtime import context

# Keys whose values are personal or biometric data in this domain.
PERSONAL_KEYS = frozenset(
    {
        "nik",
        "submitted_nik",
        "name",
        "full_name",
        "email",
        "phone",
        "address",
        "birth_date",
        "birth_place",
        "image",
        "images",
        "frame",
        "frames",
        "pixels",
        "data",
        "embedding",
        "embeddings",
        "values",
        "template",
        "probe",
        "reference",
        "password",
        "secret",
        "api_key",
        "authorization",
        "public_key_pem",
        "signature",
        "session_token",
        "token",
    }
)
_NIK_PATTERN = re.compile(r"(?<!\d)\d{16}(?!\d)")


def mask_niks(text: str) -> str:
    return _NIK_PATTERN.sub("<nik>", text)


def scrub_personal_data(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    for key in list(event):
        if key.lower() in PERSONAL_KEYS:
            event[key] = "<redacted>"
        elif isinstance(event[key], str):
            event[key] = mask_niks(event[key])
    return event


def add_call_context(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    ctx = context.current()
    if ctx is not None:
        event.setdefault("request_id", ctx.request_id)
        if ctx.org_id:
            event.setdefault("org_id", ctx.org_id)
        if ctx.method:
            event.setdefault("rpc", ctx.method)
    return event


class _CurrentStderr:
    """Writes to whatever sys.stderr is now (test runners swap it)."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class _CurrentStderrHandler(logging.StreamHandler):
    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


_configured = False


def configure(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Configure structlog and the stdlib root logger once per process."""
    global _configured
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        numeric_level = logging.INFO
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_call_context,
        scrub_personal_data,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=lambda *_args: _CurrentStderr(),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)
    if not _configured:
        handler = _CurrentStderrHandler()
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(processor=renderer, foreign_pre_chain=shared)
        )
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(numeric_level)
        _configured = True


def get_logger(name: str | None = None) -> FilteringBoundLogger:
    # A proxy to the wrapper class `configure` sets (structlog's default is one too).
    return structlog.get_logger(name)
