"""The contract's one validation layer, generated from the descriptors: every
string field reachable from every RPC's request refuses NUL and control
characters and over-long text, naming the field (proto path for gRPC callers,
lowerCamel at the gateway); floats must be finite, page sizes are capped; the
server interceptor applies it to every kind of RPC."""

from __future__ import annotations

import asyncio
import sys
import unicodedata
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from identity_runtime.field_rules import rules_of
from identity_runtime.interceptors import _validating
from identity_runtime.validation import (
    MAX_PAGE_SIZE,
    MAX_REPEATED,
    MULTILINE,
    FieldViolation,
    string_rule,
    validate,
)
from tests.support.contract_fields import Target, is_map, targets, value_type

F = FieldDescriptor


ALL = targets()


STRINGS = [t for t in ALL if value_type(t) == F.TYPE_STRING]
FLOATS = [
    t for t in ALL if value_type(t) in (F.TYPE_FLOAT, F.TYPE_DOUBLE) and not t.leaf.is_repeated
]
VECTORS = [t for t in ALL if t.leaf.type in (F.TYPE_FLOAT, F.TYPE_DOUBLE) and t.leaf.is_repeated]
PAGE_SIZES = [t for t in ALL if t.leaf.name == "page_size"]
TIMESTAMPS = [t for t in ALL if t.leaf.type == F.TYPE_MESSAGE and not is_map(t.leaf)]


def test_the_generated_targets_cover_the_contract() -> None:
    rpcs = {t.rpc for t in STRINGS}
    # Every service's requests carry strings; the lists are not vacuous.
    assert len(STRINGS) > 100 and len(rpcs) > 40
    assert "CustomerService.CreateCustomer" in rpcs
    assert any(t.proto_path == "full_name" for t in STRINGS)
    assert len(PAGE_SIZES) >= 5 and FLOATS
    assert len({t.rpc for t in TIMESTAMPS}) >= 5


def _refusal(message: Message) -> FieldViolation:
    with pytest.raises(FieldViolation) as caught:
        validate(message)
    return caught.value


@pytest.mark.parametrize("target", STRINGS, ids=str)
def test_every_string_field_refuses_nul_naming_the_field(target: Target) -> None:
    error = _refusal(target.message_with("ab\x00c"))
    assert error.code == "INVALID_ARGUMENT" and error.reason == "INVALID_FIELD"
    assert error.metadata == {"field": target.proto_path}
    assert error.message == f"{target.proto_path}: must not contain NUL characters"
    as_api = error.renamed(json_names=True)
    assert as_api.metadata == {"field": target.json_path}
    assert as_api.message.startswith(f"{target.json_path}: ")
    # The value never appears in what a caller is told.
    assert "ab" not in error.message


@pytest.mark.parametrize("target", STRINGS, ids=str)
def test_every_string_field_takes_plain_text_and_refuses_control_and_overlength(
    target: Target,
) -> None:
    rule = string_rule(target.leaf)
    declared = rules_of(target.leaf)
    longest = min(rule.max_length, (declared and declared.max_len) or rule.max_length)
    if declared is None or not declared.pattern:
        # (A field with a declared pattern has its own tests: test_field_rules.py.)
        validate(target.message_with("Siti Rahayu-01 é ü 中"))
        validate(target.message_with("x" * longest))
        assert "at most" in _refusal(target.message_with("x" * (longest + 1))).message
    for control in ("\x1b", "\x7f", "\x85", "\x08"):
        assert "control characters" in _refusal(target.message_with(f"a{control}b")).message
    if target.leaf.name in MULTILINE:
        validate(target.message_with("line one\r\n\tline two"))
    else:
        assert "control" in _refusal(target.message_with("line one\nline two")).message


STRICT_KINDS = {"identifier", "nik", "email", "phone", "url", "page token"}
# Names, and the console's search query that looks them up.
NAME_KINDS = {"name", "search query"}


@pytest.mark.parametrize("target", STRINGS, ids=str)
def test_ids_take_nothing_invisible_and_names_only_the_joiners(target: Target) -> None:
    """`user-42` and `user-42` + U+200B must not be two values that look alike;
    a name may hold the zero-width (non-)joiner some scripts need, never a bidi
    control; free text and documents keep the control-character rule only."""
    kind = string_rule(target.leaf).kind
    declared = rules_of(target.leaf)
    free_form = declared is None or not declared.pattern
    invisible = ("\u200b", "\u202e", "\u2066", "\u00ad", "\ufeff", "\u2028", "\U000e0041")
    if kind in STRICT_KINDS | NAME_KINDS:
        for char in invisible:
            error = _refusal(target.message_with(f"a{char}b"))
            assert error.metadata == {"field": target.proto_path}
            assert f"(found U+{ord(char):04X})" in error.message
    for joiner in ("\u200c", "\u200d"):
        if kind in STRICT_KINDS:
            assert "invisible" in _refusal(target.message_with(f"a{joiner}b")).message
        elif free_form:
            validate(target.message_with(f"\u0915\u094d{joiner}\u0937"))
    if kind not in STRICT_KINDS | NAME_KINDS and free_form:
        validate(target.message_with("note \u200f\u202b\u200b"))


def test_every_format_character_is_invisible_to_ids() -> None:
    """The declared set covers every Unicode Cf (and Zl, Zp) this Python knows."""
    from identity_runtime.validation import _INVISIBLE, _INVISIBLE_IN_NAMES

    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if unicodedata.category(char) in ("Cf", "Zl", "Zp"):
            assert _INVISIBLE.fullmatch(char), f"U+{code:04X}"
            assert _INVISIBLE_IN_NAMES.fullmatch(char) or char in "\u200c\u200d", f"U+{code:04X}"
    for visible in ("a", "é", "中", "\u0915", " ", "-", "\U0001f600"):
        assert not _INVISIBLE.search(visible)


def test_multiline_fields_are_the_free_text_json_and_pem_ones() -> None:
    multiline = {t.leaf.name for t in STRINGS if string_rule(t.leaf).multiline}
    assert multiline <= MULTILINE
    assert {"note", "credential_json", "public_key_pem"} <= multiline
    assert not multiline & {"full_name", "nik", "customer_id", "external_id", "email", "phone"}


@pytest.mark.parametrize("target", FLOATS, ids=str)
def test_every_float_field_must_be_finite(target: Target) -> None:
    validate(target.message_with(0.5))
    for bad in (float("nan"), float("inf"), float("-inf")):
        assert _refusal(target.message_with(bad)).metadata == {"field": target.proto_path}


def test_vectors_are_left_to_their_domain() -> None:
    # An embedding with a NaN is matching's EMBEDDING_INVALID, judged whole.
    assert VECTORS
    for target in VECTORS:
        validate(target.message_with(float("nan")))


@pytest.mark.parametrize("target", PAGE_SIZES, ids=str)
def test_every_page_size_is_capped(target: Target) -> None:
    validate(target.message_with(MAX_PAGE_SIZE))
    validate(target.message_with(0))
    for bad in (MAX_PAGE_SIZE + 1, -1, 2**31 - 1):
        error = _refusal(target.message_with(bad))
        assert error.metadata == {"field": target.proto_path}
        assert error.renamed(json_names=True).metadata == {"field": "pageSize"}


@pytest.mark.parametrize("target", TIMESTAMPS, ids=str)
def test_every_timestamp_must_be_within_the_protobuf_range(target: Target) -> None:
    """Out of range, a timestamp converts to no date (it used to reach the
    services' code and answer INTERNAL); the field is named, not the value."""
    assert target.leaf.message_type.full_name == "google.protobuf.Timestamp"
    for good in (
        Timestamp(seconds=1_700_000_000, nanos=5),
        Timestamp(seconds=-62_135_596_800),
        Timestamp(seconds=253_402_300_799, nanos=999_999_999),
    ):
        validate(target.message_with(good))
    for bad in (
        Timestamp(seconds=2**40),
        Timestamp(seconds=-(2**40)),
        Timestamp(seconds=253_402_300_800),
        Timestamp(seconds=1, nanos=-1),
        Timestamp(seconds=1, nanos=1_000_000_000),
    ):
        error = _refusal(target.message_with(bad))
        assert (error.reason, error.metadata) == ("INVALID_FIELD", {"field": target.proto_path})
        assert "valid timestamp" in error.message


def test_map_keys_and_list_lengths_are_checked() -> None:
    maps = [t for t in STRINGS if is_map(t.leaf)]
    lists = [t for t in STRINGS if t.leaf.is_repeated and not is_map(t.leaf)]
    assert maps and lists
    target = maps[0]
    message = target.message_with("fine")
    getattr(_parent(message, target), target.leaf.name)["bad\x00key"] = "fine"
    error = _refusal(message)
    assert error.metadata == {"field": target.proto_path.removesuffix('["k"]')}
    target = lists[0]
    message = target.message_with("fine")
    getattr(_parent(message, target), target.leaf.name).extend(["x"] * MAX_REPEATED)
    assert "at most" in _refusal(message).message


def _parent(message: Message, target: Target) -> Any:
    current: Any = message
    for fd in target.fields[:-1]:
        current = getattr(current, fd.name)
        if fd.is_repeated:
            current = current[0]
    return current


# --- the server interceptor ---------------------------------------------------


def _request(text: str) -> Message:
    target = next(t for t in STRINGS if t.proto_path == "full_name")
    return target.message_with(text)


async def _one(request: Any, ctx: Any) -> str:
    return "called"


async def _one_of_stream(requests: AsyncIterator[Any], ctx: Any) -> str:
    async for _ in requests:
        pass
    return "called"


async def _many(request: Any, ctx: Any) -> AsyncIterator[str]:
    yield "called"


async def _many_of_stream(requests: AsyncIterator[Any], ctx: Any) -> AsyncIterator[str]:
    async for _ in requests:
        yield "called"


KINDS = {
    "unary_unary": (grpc.unary_unary_rpc_method_handler, _one, False, False),
    "unary_stream": (grpc.unary_stream_rpc_method_handler, _many, False, True),
    "stream_unary": (grpc.stream_unary_rpc_method_handler, _one_of_stream, True, False),
    "stream_stream": (grpc.stream_stream_rpc_method_handler, _many_of_stream, True, True),
}


@pytest.mark.parametrize("kind", KINDS)
def test_the_interceptor_validates_every_kind_of_rpc(kind: str) -> None:
    make, behaviour, streamed_in, streamed_out = KINDS[kind]
    handler = _validating(make(behaviour))
    call = getattr(handler, kind)

    async def run(text: str) -> list[str]:
        message = _request(text)
        request: Any = message
        if streamed_in:

            async def requests() -> AsyncIterator[Message]:
                yield _request("Siti")
                yield message

            request = requests()
        if streamed_out:
            return [item async for item in call(request, None)]
        return [await call(request, None)]

    assert asyncio.run(run("Siti Rahayu"))[-1] == "called"
    with pytest.raises(FieldViolation) as caught:
        asyncio.run(run("Siti\x00"))
    assert caught.value.metadata == {"field": "full_name"}
