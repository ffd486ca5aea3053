"""Field rules declared in the contracts: `(identity.common.v1.field)`.

A request field may carry `FieldRules` (protos/identity/common/v1/options.proto):
`required`, `min_len`/`max_len`, `pattern`, `min_items`, and, for the
document only, `format` and `example`. The names follow buf's protovalidate
(`buf.validate`), so a later move to it is mechanical; the rules live in our
own options because the generated stubs must depend on nothing but grpcio,
protobuf and googleapis-common-protos (docs/grpc-clients.md).

`declared_problems` checks one field's value against its rules (the
validation layer calls it for every field that has some, at the gateway and
in every service), `declared_schema` states the same rules as JSON Schema
keywords for the OpenAPI document.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from identity_platform_api.common.v1 import options_pb2

F = FieldDescriptor
FieldRules = options_pb2.FieldRules


@functools.cache
def rules_of(fd: FieldDescriptor) -> FieldRules | None:
    """The field's declared rules, or None."""
    options = fd.GetOptions()
    if not options.HasExtension(options_pb2.field):
        return None
    return options.Extensions[options_pb2.field]


@functools.cache
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def is_required(fd: FieldDescriptor) -> bool:
    rules = rules_of(fd)
    return bool(rules and (rules.required or rules.min_items))


def declared_problem(message: Message, fd: FieldDescriptor) -> str:
    """What is wrong with `fd` in `message` under its declared rules ('' if nothing)."""
    rules = rules_of(fd)
    if rules is None:
        return ""
    if fd.is_repeated:
        count = len(getattr(message, fd.name))
        least = max(rules.min_items, 1 if rules.required else 0)
        if count < least:
            return "is required" if least == 1 else f"at least {least} items"
        return ""
    if fd.type == F.TYPE_MESSAGE:
        return "is required" if rules.required and not message.HasField(fd.name) else ""
    value = getattr(message, fd.name)
    if rules.required and not value:
        return "is required"
    if fd.type in (F.TYPE_STRING, F.TYPE_BYTES) and value:
        if rules.min_len and len(value) < rules.min_len:
            return f"at least {rules.min_len} {_unit(fd)}"
        if rules.max_len and len(value) > rules.max_len:
            return f"at most {rules.max_len} {_unit(fd)}"
        if rules.pattern and fd.type == F.TYPE_STRING:
            if not _pattern(rules.pattern).fullmatch(value):
                return f"must match {rules.pattern}"
    return ""


def _unit(fd: FieldDescriptor) -> str:
    return "bytes" if fd.type == F.TYPE_BYTES else "characters"


def declared_schema(fd: FieldDescriptor, items: bool = False) -> dict[str, Any]:
    """The declared rules as JSON Schema keywords: of the value, or, with
    `items`, of each item of a list (min_items stays on the list)."""
    rules = rules_of(fd)
    if rules is None:
        return {}
    schema: dict[str, Any] = {}
    if fd.is_repeated and not items:
        least = max(rules.min_items, 1 if rules.required else 0)
        if least:
            schema["minItems"] = least
        return schema
    if fd.type == F.TYPE_STRING:
        if rules.required or rules.min_len:
            schema["minLength"] = max(rules.min_len, 1)
        if rules.max_len:
            schema["maxLength"] = rules.max_len
        if rules.pattern:
            schema["pattern"] = rules.pattern
    if fd.type == F.TYPE_BYTES and rules.required:
        schema["minLength"] = 1
    if rules.format:
        schema["format"] = rules.format
    if rules.example:
        schema["examples"] = [rules.example]
    return schema
