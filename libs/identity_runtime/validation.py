"""One validation layer for every request, driven by the contract descriptors.

`validate(message)` walks a request message against its descriptor and
refuses, with INVALID_ARGUMENT / INVALID_FIELD naming the field (never its
value), what no route or RPC of this API accepts:

- strings: no NUL and no other control character (Unicode category Cc: C0,
  DEL, C1), except that the few fields that legitimately hold several lines
  (free text written by people: notes, reasons, descriptions; JSON
  documents; PEM keys: `MULTILINE`) may contain TAB, LF and CR; nothing
  invisible (format characters, Unicode Cf, such as U+202E or U+200B, line
  and paragraph separators, other default-ignorables) in identifiers, NIKs,
  emails, phone numbers, URLs and page tokens, nor in names except the
  zero-width (non-)joiner some scripts need; at most
  `string_rule(field).max_length` characters, by the
  field's kind (identifiers 128, NIKs 32, page tokens 512, names and
  addresses 256, a search query 200, free text 2,000, JSON documents 64 KiB,
  others 1,024);
- map keys and values: the same rules as strings of their field;
- numbers: scalar floats finite (no NaN, no infinities; vectors such as
  embeddings are judged whole by their domain); `page_size` between 0 and
  `MAX_PAGE_SIZE` (services clamp lower where they page smaller);
- timestamps: within the range google.protobuf.Timestamp defines (years 1
  to 9999, nanos 0 to 999,999,999), so that every one converts to a date;
- repeated fields: at most `MAX_REPEATED` items; bytes fields are not
  looked at (the message size limit bounds them, and their domain checks
  their content).

The rules are declared once, here, by field name and type; every field of
every request message falls under one of them. The same walk runs at the
gateway (before the call, so a refusal is a 400 naming the field as the API
spells it, lowerCamel) and in every service (the `ValidationInterceptor`, so
a caller of the gRPC stubs gets the same refusal naming the proto field path).
Domain rules (a NIK's 16 digits, an email's shape, ...) stay in the domain
code; this layer only keeps out what no field may hold, so that nothing
reaches a database or a log that could make it fail or lie.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from identity_runtime.errors import InvalidArgument
from identity_runtime.field_rules import declared_problem, declared_schema, rules_of

F = FieldDescriptor
# The way to a field: (field, index in a list / key in a map / None) per level.
Steps = tuple[tuple[FieldDescriptor, object], ...]

MAX_PAGE_SIZE = 500
MAX_REPEATED = 1000

# Field names (proto names) whose strings may span several lines.
MULTILINE = frozenset(
    {
        "note",
        "description",
        "detail",
        "reason",
        "credential_json",
        "options_json",
        "public_key_pem",
    }
)

# Identifiers whose names do not end in `_id`.
_IDENTIFIER_NAMES = frozenset(
    {"nonce", "request_id", "actor", "platform", "model_id", "model_version", "key_fingerprint"}
)


@dataclass(frozen=True)
class StringRule:
    kind: str
    max_length: int
    multiline: bool


# Kinds whose values are matched by their code points (ids, NIKs, emails,
# phone numbers, URLs, page tokens): nothing invisible, so "user-42" and
# "user-42" + U+200B cannot be two customers that look alike.
_MACHINE_KINDS = frozenset({"identifier", "nik", "email", "phone", "url", "page token"})
# Names, and the console's search query (which looks names up): the same,
# except the zero-width non-joiner and joiner (U+200C, U+200D), which some
# scripts need inside a word (Arabic/Pegon, Devanagari).
_NAME_KINDS = frozenset({"name", "search query"})


@functools.cache
def string_rule(fd: FieldDescriptor) -> StringRule:
    """The rule of one string field (or map key/value), by its name."""
    name = fd.name
    multiline = name in MULTILINE
    if name.endswith("_json"):
        return StringRule("json", 65536, multiline)
    if name == "public_key_pem":
        return StringRule("pem", 16384, multiline)
    if name in ("nik", "submitted_nik"):
        return StringRule("nik", 32, multiline)
    if name.endswith("page_token"):
        return StringRule("page token", 512, multiline)
    if name.endswith("_id") or name in _IDENTIFIER_NAMES:
        return StringRule("identifier", 128, multiline)
    if name in ("email",):
        return StringRule("email", 254, multiline)
    if name in ("phone",):
        return StringRule("phone", 32, multiline)
    if name in MULTILINE or name in ("reason", "message"):
        return StringRule("free text", 2000, multiline)
    if name == "url":
        return StringRule("url", 2048, multiline)
    if name == "q":  # the console's customer search: 2 to 200 characters
        return StringRule("search query", 200, multiline)
    if name.endswith("name") or name in ("address", "subject"):
        return StringRule("name", 256, multiline)
    return StringRule("text", 1024, multiline)


# The same character classes as JSON Schema (ECMA-262) patterns, for OpenAPI.
_PATTERN = r"^[^\u0000-\u001F\u007F-\u009F]*$"
_PATTERN_LINES = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"


def json_schema_constraints(fd: FieldDescriptor) -> dict[str, Any]:
    """This layer's rules for one field (its items, for a list) as JSON Schema
    keywords, so that the OpenAPI document states what is refused: the rules
    by name and type, then those the contract declares on the field (a
    declared pattern replaces the control-character one, which it implies)."""
    schema: dict[str, Any] = {}
    if fd.type == F.TYPE_STRING:
        rule = string_rule(fd)
        schema = {"maxLength": rule.max_length, "pattern": _json_pattern(rule)}
    elif fd.name == "page_size" and not fd.is_repeated:
        schema = {"minimum": 0, "maximum": MAX_PAGE_SIZE}
    declared = declared_schema(fd, items=True)
    if "maxLength" in declared and "maxLength" in schema:
        declared["maxLength"] = min(declared["maxLength"], schema["maxLength"])
    return {**schema, **declared}


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_EXCEPT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

# Invisible characters: every format character (Unicode category Cf: bidi
# embeddings, overrides, isolates and marks, zero-width space/joiners, word
# joiner, BOM, soft hyphen, tags, ...), the line and paragraph separators
# (Zl, Zp) and the other default-ignorable code points that render as nothing
# (combining grapheme joiner, Hangul fillers, variation selectors, Mongolian
# free variation selectors). Unicode 15.1; tests/unit/test_validation.py checks
# every Cf of the running Python is here. Outside the Basic Multilingual
# Plane: tags, musical and shorthand format controls, ...
_INVISIBLE_ASTRAL = (
    r"\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    r"\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
)
# All but the zero-width non-joiner and joiner (U+200C, U+200D).
_INVISIBLE_BUT_JOINERS = (
    r"\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160"
    r"\u17b4\u17b5\u180b-\u180f\u200b\u200e\u200f\u2028-\u202e\u2060-\u206f\u3164"
    r"\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
)
_JOINERS = r"\u200c\u200d"
_INVISIBLE = re.compile(f"[{_INVISIBLE_BUT_JOINERS}{_JOINERS}{_INVISIBLE_ASTRAL}]")
_INVISIBLE_IN_NAMES = re.compile(f"[{_INVISIBLE_BUT_JOINERS}{_INVISIBLE_ASTRAL}]")


def _json_pattern(rule: StringRule) -> str:
    """The character rule as a JSON Schema pattern. It states the invisible
    characters of the Basic Multilingual Plane only: an ECMA-262 class cannot
    name code points beyond it in a way every validator reads alike (with and
    without the `u` flag); the service refuses those too."""
    base = _PATTERN_LINES if rule.multiline else _PATTERN
    if rule.kind in _MACHINE_KINDS:
        return base.replace("]*$", f"{_INVISIBLE_BUT_JOINERS}{_JOINERS}]*$")
    if rule.kind in _NAME_KINDS:
        return base.replace("]*$", f"{_INVISIBLE_BUT_JOINERS}]*$")
    return base


def _invisible_problem(text: str, rule: StringRule) -> str:
    if rule.kind in _MACHINE_KINDS:
        found = _INVISIBLE.search(text)
    elif rule.kind in _NAME_KINDS:
        found = _INVISIBLE_IN_NAMES.search(text)
    else:
        return ""
    if found is None:
        return ""
    return (
        f"must not contain invisible or bidirectional formatting characters "
        f"(found U+{ord(found.group()):04X})"
    )


class FieldViolation(InvalidArgument):
    """An INVALID_FIELD refusal naming the field at the end of `steps`."""

    def __init__(self, steps: Steps, problem: str, json_names: bool = False):
        self.steps = steps
        self.problem = problem
        field = field_path(steps, json_names)
        super().__init__(f"{field}: {problem}", "INVALID_FIELD", {"field": field})

    def renamed(self, json_names: bool) -> FieldViolation:
        """The same violation, the field spelt with JSON (lowerCamel) or proto names."""
        return FieldViolation(self.steps, self.problem, json_names)


def field_path(steps: Steps, json_names: bool) -> str:
    parts: list[str] = []
    for fd, where in steps:
        # types-protobuf omits json_name, which every FieldDescriptor has.
        name = fd.json_name if json_names else fd.name  # type: ignore[attr-defined]
        parts.append(f".{name}" if parts else name)
        if isinstance(where, int):
            parts.append(f"[{where}]")
        elif isinstance(where, str):
            parts.append(f"[{json.dumps(where)}]")
    return "".join(parts)


class Undecodable:
    """What a server's lenient deserializer hands on for bytes that are not the
    method's message: grpc would answer UNKNOWN, before the caller is even
    admitted, and log a traceback; this way the caller is admitted first and
    `validate` then refuses the request like any other malformed one."""

    __slots__ = ()


UNDECODABLE = Undecodable()


def lenient(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """`deserializer`, answering UNDECODABLE for bytes it cannot parse."""
    if deserializer is None:
        return None
    parse = deserializer

    def lenient_parse(data: bytes) -> Any:
        try:
            return parse(data)
        except DecodeError:
            return UNDECODABLE

    return lenient_parse


def validate(message: Message | Undecodable) -> None:
    """Raise a FieldViolation (proto field names) for the first rule `message` breaks."""
    if isinstance(message, Undecodable):
        raise InvalidArgument(
            "the request is not an encoded message of the method's request type",
            "MALFORMED_REQUEST",
        )
    violation = first_violation(message)
    if violation is not None:
        raise violation


def first_violation(message: Message) -> FieldViolation | None:
    """The first rule `message` breaks (proto field names), or None."""
    found = _message_problem(message)
    return None if found is None else FieldViolation(*found)


# (the way from the message being looked at down to the field, what is wrong
# with it): the way is built only on a refusal, from the field up.
_Problem = tuple[Steps, str]


@functools.cache
def _checked_fields(descriptor: Descriptor) -> tuple[FieldDescriptor, ...]:
    """The fields this layer looks at: all but bytes (bounded by the message
    size limit; reading them would copy every image)."""
    return tuple(fd for fd in descriptor.fields if fd.type != F.TYPE_BYTES)


@functools.cache
def _ruled_fields(descriptor: Descriptor) -> tuple[FieldDescriptor, ...]:
    """The fields with rules declared in the contract (required, lengths, ...)."""
    return tuple(fd for fd in descriptor.fields if rules_of(fd) is not None)


def _message_problem(message: Message) -> _Problem | None:
    descriptor: Descriptor = message.DESCRIPTOR  # type: ignore[assignment]
    for fd in _checked_fields(descriptor):
        found = _field_problem(message, fd)
        if found is not None:
            return found
    # The contract's declared rules after what no field may hold, so that a
    # NUL byte is named even in a request that also lacks a required field.
    for fd in _ruled_fields(descriptor):
        problem = declared_problem(message, fd)
        if problem:
            return ((fd, None),), problem
    return None


# Repeated fields of these types are vectors (an embedding): _value_problem
# checks nothing per element, so the walk does not visit their elements.
_WHOLE_VECTOR_TYPES = frozenset((F.TYPE_FLOAT, F.TYPE_DOUBLE))


def _field_problem(message: Message, fd: FieldDescriptor) -> _Problem | None:
    if fd.is_repeated:
        value = getattr(message, fd.name)
        if not value:
            return None
    elif fd.type == F.TYPE_MESSAGE:
        if not message.HasField(fd.name):
            return None
        value = getattr(message, fd.name)
    else:
        value = getattr(message, fd.name)
    if _is_map(fd):
        return _map_problem(value, fd)
    if fd.is_repeated:
        if len(value) > MAX_REPEATED:
            return ((fd, None),), f"at most {MAX_REPEATED} items"
        if fd.type in _WHOLE_VECTOR_TYPES:
            return None  # judged whole by its domain (see _value_problem): nothing per element
        for index, item in enumerate(value):
            found = _value_problem(item, fd, rule_of=fd)
            if found is not None:
                below, problem = found
                return ((fd, index), *below), problem
        return None
    found = _value_problem(value, fd, rule_of=fd)
    if found is None:
        return None
    below, problem = found
    return ((fd, None), *below), problem


def _map_problem(entries: Any, fd: FieldDescriptor) -> _Problem | None:
    if len(entries) > MAX_REPEATED:
        return ((fd, None),), f"at most {MAX_REPEATED} entries"
    key_fd = fd.message_type.fields_by_name["key"]
    value_fd = fd.message_type.fields_by_name["value"]
    for key, item in entries.items():
        if key_fd.type == F.TYPE_STRING:
            problem = _string_problem(key, fd)
            if problem:
                # The key itself is the problem: name the map, not the key.
                return ((fd, None),), f"a key {problem}"
        found = _value_problem(item, value_fd, rule_of=fd)
        if found is not None:
            below, problem = found
            return ((fd, key), *below), problem
    return None


def _value_problem(value: Any, fd: FieldDescriptor, rule_of: FieldDescriptor) -> _Problem | None:
    """What is wrong with one value of `fd` (an item, for a list or map),
    the way below it (empty unless `value` is a message); None if nothing."""
    kind = fd.type
    if kind == F.TYPE_MESSAGE:
        if fd.message_type.full_name == TIMESTAMP:
            if not _valid_timestamp(value):
                return (), "is not a valid timestamp (years 1 to 9999)"
            return None
        return _message_problem(value)
    if kind == F.TYPE_STRING:
        problem = _string_problem(value, rule_of)
    elif kind in (F.TYPE_FLOAT, F.TYPE_DOUBLE):
        # A vector (repeated floats: an embedding) is judged whole by its
        # domain (matching's EMBEDDING_INVALID), not element by element.
        problem = (
            "must be a finite number"
            if not rule_of.is_repeated and not math.isfinite(value)
            else ""
        )
    elif rule_of.name == "page_size" and not 0 <= value <= MAX_PAGE_SIZE:
        problem = f"must be between 0 and {MAX_PAGE_SIZE}"
    else:
        problem = ""
    return ((), problem) if problem else None


TIMESTAMP = "google.protobuf.Timestamp"
# The range google.protobuf.Timestamp defines: 0001-01-01T00:00:00Z to
# 9999-12-31T23:59:59.999999999Z (what converts to a datetime).
_TIMESTAMP_SECONDS = (-62_135_596_800, 253_402_300_799)


def _valid_timestamp(value: Any) -> bool:
    low, high = _TIMESTAMP_SECONDS
    return low <= value.seconds <= high and 0 <= value.nanos <= 999_999_999


def _string_problem(text: str, fd: FieldDescriptor) -> str:
    rule = string_rule(fd)
    control = _CONTROL_EXCEPT_LINES if rule.multiline else _CONTROL
    if control.search(text):
        if "\x00" in text:
            return "must not contain NUL characters"
        return "must not contain control characters" + (
            " other than tab and line breaks" if rule.multiline else ""
        )
    invisible = _invisible_problem(text, rule)
    if invisible:
        return invisible
    if len(text) > rule.max_length:
        return f"at most {rule.max_length} characters ({rule.kind})"
    return ""


@functools.cache
def _is_map(fd: FieldDescriptor) -> bool:
    return fd.type == F.TYPE_MESSAGE and fd.message_type.GetOptions().map_entry
