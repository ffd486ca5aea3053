"""Structured JSON logs that carry the request id and tenant and never PII.

Two nets under the rope (callers still must not log such values):

- every structlog event passes through `scrub_personal_data`: keys that name
  personal or biometric data are redacted, and every string value (the
  message, a formatted exception and its traceback included) goes through
  `scrub_text`;
- the root logging handler, which every stdlib logger (SQLAlchemy, gRPC,
  uvicorn, ...) reaches, carries `ScrubbingFilter`, which does the same to
  each record's message, arguments and exception text.

`scrub_text` masks what can be recognised in free text: NIKs (16 digits, also
grouped by spaces, dots or hyphens),
email addresses, Indonesian phone numbers (+62 / 62 / 08...), API keys
(`idk_...`, bearer tokens) and base64 blobs (image data, sealed values).
Names cannot be recognised; they are kept out by construction (no payloads
in logs, SQL parameters hidden by `identity_store.db`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
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
# What may part the digits of a NIK or a phone number written in groups: one
# space, dot, hyphen or underscore ("3273-0241-0795-0003", "0812.3456.7890",
# "3273_0241_0795_0003"). Not a colon: a timestamp's digits would read as one.
_DIGIT_SEPARATOR = r"[\s._-]"
# A NIK's 16 digits.
_NIK_DIGITS = rf"\d(?:{_DIGIT_SEPARATOR}?\d){{15}}"
_NIK_PATTERN = re.compile(rf"(?<!\d){_NIK_DIGITS}(?!\d)")
# Indonesian mobile numbers: +62 8.., 62 8.., 08... No dot after the prefix:
# "0.8123456789" is a score.
_PHONE_DIGITS = rf"(?:\+62|62|0)[\s_-]?8\d(?:{_DIGIT_SEPARATOR}?\d){{6,11}}"
# In a log line: also after a dot ("Siti.6281234567890"), not inside a longer
# number or a word.
_PHONE_PATTERN = re.compile(rf"(?<![\w+])(?<!\d\.){_PHONE_DIGITS}(?!\d)")
# The same two, where they stand as tokens: no letter or digit joined to them.
_NIK_TOKEN = re.compile(rf"(?<![0-9A-Za-z]){_NIK_DIGITS}(?![0-9A-Za-z])")
_PHONE_TOKEN = re.compile(rf"(?<![0-9A-Za-z+]){_PHONE_DIGITS}(?![0-9A-Za-z])")
# (pattern, replacement), applied in order.
_SCRUBBERS: tuple[tuple[re.Pattern[str], str], ...] = (
    # API keys first: their base32 body must not read as a base64 blob.
    (re.compile(r"\bidk_[A-Za-z0-9]{8,}"), "<api-key>"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 <redacted>"),
    # Long runs of base64 (standard or URL-safe): image data, sealed values.
    # 100+ characters, so that hex digests (64) and ids stay readable.
    (re.compile(r"[A-Za-z0-9+/_-]{100,}={0,2}"), "<base64>"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"), "<email>"),
    (_NIK_PATTERN, "<nik>"),
    (_PHONE_PATTERN, "<phone>"),
)


def mask_id_numbers(text: str) -> str:
    """NIKs and phone numbers (grouped ones too) standing as tokens masked.
    For text kept for good (the audit chain's details): there, masking 16
    digits inside an id (enr_<hex>) would lose the id for good, whereas a log
    line only loses readability."""
    return _PHONE_TOKEN.sub("<phone>", _NIK_TOKEN.sub("<nik>", text))


def _scrubbed(text: str) -> str:
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    return text


# Short strings repeat on every line (event names, statuses, RPC names,
# organisation and service names): one the scrubbers leave unchanged is
# remembered and not scanned again. Only such clean strings are kept (never
# one with something masked in it). Bounded: emptied when full.
_CLEAN_SHORT: set[str] = set()
_SHORT = 80
_SHORT_ENTRIES = 4096


def scrub_text(text: str) -> str:
    """`text` with NIKs, emails, phone numbers, API keys and base64 blobs masked."""
    if len(text) > _SHORT:
        return _scrubbed(text)
    if text in _CLEAN_SHORT:
        return text
    done = _scrubbed(text)
    if done == text:
        if len(_CLEAN_SHORT) >= _SHORT_ENTRIES:
            _CLEAN_SHORT.clear()
        _CLEAN_SHORT.add(text)
    return done


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub_value(v) for v in value)
    if isinstance(value, dict):
        return {
            k: "<redacted>" if str(k).lower() in PERSONAL_KEYS else _scrub_value(v)
            for k, v in value.items()
        }
    return value


# Ids the platform generates as hex: a run of 16 digits inside one is not a
# NIK, and masking it would break request correlation across services.
_GENERATED_IDS = frozenset({"request_id", "trace_id", "span_id"})
_HEX_ID = re.compile(r"[0-9a-f]{16,64}")


def _is_generated_id(value: str) -> bool:
    """A hex id as the platform makes them. All digits is not one (a uuid4
    hex has letters but in one case of millions): a client's request id
    "3273024107950003" is a NIK and goes through the scrubbers."""
    return _HEX_ID.fullmatch(value) is not None and not value.isdigit()


# The time `add_timestamp` writes on every line: digits and
# separators in this shape hold nothing the scrubbers mask (no run of 16
# digits, no 0/62 + 8 + 6 digits, no '@', too short for base64), so it is
# not scanned; anything else under this key is.
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z")


# How `scrub_personal_data` treats a key, decided once per key name.
_PERSONAL, _GENERATED_ID, _TIME, _INTERNAL, _ANY = range(5)
_KEY_KINDS: dict[str, int] = {}
_PLAIN = (int, float, bool, type(None))


def _key_kind(key: str) -> int:
    if key.lower() in PERSONAL_KEYS:
        kind = _PERSONAL
    elif key in _GENERATED_IDS:
        kind = _GENERATED_ID
    elif key == "timestamp":
        kind = _TIME
    elif key in ("_record", "_from_structlog", "exc_info"):
        kind = _INTERNAL
    else:
        kind = _ANY
    if len(_KEY_KINDS) < _SHORT_ENTRIES:  # bounded: keys are names in code, not data
        _KEY_KINDS[key] = kind
    return kind


def scrub_personal_data(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    # Values are replaced in place (the keys stay), so iterating is safe.
    for key, value in event.items():
        kind = _KEY_KINDS.get(key)
        if kind is None:
            kind = _key_kind(key)
        if kind == _PERSONAL:
            event[key] = "<redacted>"
        elif kind == _INTERNAL or isinstance(value, _PLAIN):
            continue
        elif kind == _GENERATED_ID and isinstance(value, str) and _is_generated_id(value):
            continue
        elif kind == _TIME and isinstance(value, str) and _ISO_TIME.fullmatch(value):
            continue
        else:
            event[key] = _scrub_value(value)
    return event


class ScrubbingFilter(logging.Filter):
    """On the root handler: every stdlib record's message, arguments and
    exception text scrubbed (`scrub_text`) before any formatter sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: keep the template only
            message = str(record.msg)
        record.msg = scrub_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub_text(record.exc_text)
        return True


def add_call_context(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    ctx = context.current()
    if ctx is not None:
        event.setdefault("request_id", ctx.request_id)
        if ctx.org_id:
            event.setdefault("org_id", ctx.org_id)
        if ctx.method:
            event.setdefault("rpc", ctx.method)
    return event


# The last second `add_timestamp` formatted: (whole seconds, its ISO text).
_stamped_second: tuple[int, str] = (-1, "")


def add_timestamp(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """ "timestamp": UTC, ISO 8601 with microseconds ("2026-11-26T21:51:00.472759Z"),
    the date and time formatted once a second (every call line carries one)."""
    global _stamped_second
    now = time.time()
    second = int(now)
    if _stamped_second[0] != second:
        _stamped_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    event["timestamp"] = f"{_stamped_second[1]}.{int((now - second) * 1e6):06d}Z"
    return event


# One encoder for every line: json.dumps with any argument builds a new one
# per call. What JSON cannot hold is written as its repr (as structlog does).
_JSON = json.JSONEncoder(default=repr)


def render_json(_logger: WrappedLogger, _method: str, event: EventDict) -> str:
    return _JSON.encode(event)


class _CurrentStderr:
    """Writes to whatever sys.stderr is now (test runners swap it)."""

    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class _CurrentStderrHandler(logging.StreamHandler):
    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


_configured = False
# What `configure` set, for `write_hot_line` (until then: structlog's defaults).
_service = ""
_threshold = logging.INFO
_json_lines = False
# Libraries that log whole request URLs (query strings included) at INFO.
_URL_LOGGERS = ("httpx", "httpcore")
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _numeric(level: str) -> int:
    numeric = logging.getLevelName(level.upper())
    return numeric if isinstance(numeric, int) else logging.INFO


def configure(
    service: str, level: str = "INFO", fmt: str = "json", libraries_level: str | None = None
) -> None:
    """Configure structlog and the stdlib root logger (both to stderr; the
    root's handler is installed once per process). `libraries_level` is the
    stdlib root's level when it differs from `level` (the `identity` command
    keeps the libraries' INFO lines, alembic's "Context impl ...", out of an
    operator's terminal)."""
    global _configured, _service, _threshold, _json_lines
    numeric_level = _numeric(level)
    root_level = numeric_level if libraries_level is None else _numeric(libraries_level)
    renderer: Processor = (
        render_json if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        add_timestamp,
        add_call_context,
        # Exceptions become text before scrubbing, so tracebacks are scrubbed too.
        structlog.processors.format_exc_info,
        scrub_personal_data,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=lambda *_args: _CurrentStderr(),
        cache_logger_on_first_use=False,
    )
    _service, _threshold, _json_lines = service, numeric_level, fmt == "json"
    structlog.contextvars.bind_contextvars(service=service)
    if not _configured:
        handler = _CurrentStderrHandler()
        handler.addFilter(ScrubbingFilter())
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(processor=renderer, foreign_pre_chain=shared)
        )
        logging.getLogger().handlers[:] = [handler]
        _configured = True
    logging.getLogger().setLevel(root_level)
    # HTTP clients log every request's full URL at INFO; a partner's
    # callback URL may carry a token or an id in its query.
    for name in _URL_LOGGERS:
        logging.getLogger(name).setLevel(max(root_level, logging.WARNING))


def get_logger(name: str | None = None) -> FilteringBoundLogger:
    # A proxy to the wrapper class `configure` sets (structlog's default is one too).
    return structlog.get_logger(name)


def write_hot_line(level: str, event: str, fields: dict[str, Any]) -> None:
    """A line written on every call (the RPC access line): at `level`
    ("info", "warning" or "error"), the same keys and the same scrubbing as
    the JSON pipeline `configure` installs, rendered without structlog's
    generic chain (bound-logger proxy, context merge, one call per
    processor), which costs several times the line itself. The console
    format goes through structlog."""
    if _LEVELS[level] < _threshold:
        return
    if not _json_lines:
        getattr(get_logger("identity.rpc"), level)(event, **fields)
        return
    line: EventDict = {**fields, "event": event, "service": _service, "level": level}
    add_timestamp(None, level, line)
    add_call_context(None, level, line)
    scrub_personal_data(None, level, line)
    _CurrentStderr().msg(render_json(None, level, line))
