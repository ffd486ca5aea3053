"""HTTP request -> protobuf request message, protobuf response -> HTTP body.

The request message is filled, in this order, from
1. the JSON body (`body: "*"`: the whole message; `body: "field"`: that field),
   parsed with the proto3 JSON mapping (google.protobuf.json_format);
2. the query string, for fields neither in the path nor in the body (never
   with `body: "*"`): dotted names for nested fields, repetition for repeated
   fields, enums by name, RFC 3339 timestamps;
3. the path variables, which win.

Before json_format sees a body, `check_json` walks it against the message
descriptor, so every client mistake gets a precise 4xx that names the field
(never its value: a body may carry a NIK): an unknown field or a value of the
wrong JSON type is MALFORMED_REQUEST, a bytes field that is not strict base64
is INVALID_BASE64 (json_format would silently drop bad characters).
"""

from __future__ import annotations

import binascii
import functools
import json
import math
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from gateway import errors, oauth
from gateway.routing import Route
from identity_runtime import validation
from identity_runtime.errors import DomainError

F = FieldDescriptor
INT_RANGES = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1),
    F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1),
    F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1),
    F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1),
    F.TYPE_FIXED64: (0, 2**64 - 1),
}
FLOAT_TYPES = (F.TYPE_FLOAT, F.TYPE_DOUBLE)
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
# More digits than any 64-bit integer has (with zero padding to spare): out of
# range without converting (Python refuses to convert 4,300+ digits at all).
_MAX_INTEGER_DIGITS = 64
_FLOAT_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_FLOAT_WORDS = ("NaN", "Infinity", "-Infinity")
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/\-_]*={0,2}")
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")
WRAPPERS = frozenset(
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)
# Well-known types whose JSON form json_format checks itself.
FREE_FORM = frozenset(
    {
        "google.protobuf.Struct",
        "google.protobuf.Value",
        "google.protobuf.ListValue",
        "google.protobuf.Any",
        "google.protobuf.Empty",
    }
)
HTTP_BODY = "google.api.HttpBody"
# Messages whose JSON form is not an object of their fields.
_SPECIAL_FORMS = (
    FREE_FORM
    | WRAPPERS
    | {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}
)


def is_repeated(fd: FieldDescriptor) -> bool:
    return bool(fd.is_repeated)


def is_map(fd: FieldDescriptor) -> bool:
    return fd.type == F.TYPE_MESSAGE and fd.message_type.GetOptions().map_entry


def decode_base64(text: str, field: str) -> bytes:
    """Strict proto3-JSON base64: standard or URL-safe alphabet, padding optional."""
    if len(text) % 4 == 0 and not text.endswith("==="):
        # Padded standard base64 (what the SDK sends) decodes in one pass
        # (strict mode still takes "===" after a whole group, hence the
        # guard); anything else takes the checks below.
        try:
            return binascii.a2b_base64(text, strict_mode=True)
        except (binascii.Error, ValueError):
            pass
    if not _BASE64_TEXT.fullmatch(text) or len(text.rstrip("=")) % 4 == 1:
        raise _bad_base64(field)
    unpadded = text.rstrip("=")
    if text != unpadded and len(text) % 4:
        raise _bad_base64(field)
    normalised = unpadded.translate(_URLSAFE_TO_STANDARD)
    normalised += "=" * (-len(normalised) % 4)
    try:
        return binascii.a2b_base64(normalised, strict_mode=True)
    except binascii.Error:
        raise _bad_base64(field) from None


def _bad_base64(field: str) -> errors.GatewayError:
    return errors.GatewayError(
        "INVALID_ARGUMENT",
        "INVALID_BASE64",
        f"{field}: not valid base64 (standard or URL-safe alphabet)",
        {"field": field},
    )


# --- JSON bodies -----------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _RepeatedKey(Exception):
    """A key given twice in one JSON object (json.loads keeps the last)."""

    def __init__(self, key: str):
        self.key = key


def _object_without_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 8259 leaves a repeated name's meaning to the reader; two readers
    # (a signature check, a proxy, this gateway) could take different values.
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _RepeatedKey(key)
        found[key] = value
    return found


class HugeInteger:
    """A JSON integer literal longer than any field holds (Python refuses to
    convert 4,300+ digits): kept as text so `check_json` can refuse it as out
    of range, naming its field."""

    def __init__(self, digits: str):
        self.digits = digits


def _parse_int(text: str) -> int | HugeInteger:
    return HugeInteger(text) if len(text) > _MAX_INTEGER_DIGITS else int(text)


# A `\uD800`-`\uDFFF` escape: only through one can a lone surrogate get into
# decoded JSON (the UTF-8 decoder refuses encoded ones).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.malformed("the body is not UTF-8") from None
    try:
        parsed = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
            object_pairs_hook=_object_without_repeated_keys,
        )
    except _RepeatedKey as repeated:
        shown = json.dumps(errors.shown_name(repeated.key))
        raise errors.malformed(f"the body gives the key {shown} twice in one object") from None
    except (ValueError, RecursionError):
        # The decoder's message quotes the body; say where, not what.
        raise errors.malformed("the body is not valid JSON") from None
    if _SURROGATE_ESCAPE.search(text) and _holds_lone_surrogate(parsed):
        # Not text: it cannot be encoded (a proto string, an error message
        # naming a key or an enum's value), so it is refused here, for every
        # field and key at once.
        raise errors.malformed("the body holds a lone UTF-16 surrogate escape (\\ud800-\\udfff)")
    return parsed


def _holds_lone_surrogate(value: Any) -> bool:
    """Whether any string or key in decoded JSON holds a lone surrogate (a
    valid pair decodes to one character). A loop, not recursion: json.loads
    nests deeper than the recursion limit allows a walk."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


@functools.cache
def _fields_by_json_key(message: Descriptor) -> dict[str, FieldDescriptor]:
    found = {}
    for fd in message.fields:
        found[fd.name] = fd
        found[fd.json_name] = fd
    return found


def _wrong_type(field: str, expected: str) -> errors.GatewayError:
    return errors.malformed(f"{field}: expected {expected}", field)


# Where a decoded bytes value goes: (field name, index in a repeated field or
# None) from the request message down, and the bytes.
Trail = tuple[tuple[str, int | None], ...]
DecodedBytes = list[tuple[Trail, str, "bytes | list[bytes]"]]


def check_json(
    value: Any,
    message: Descriptor,
    path: str = "",
    decoded: DecodedBytes | None = None,
    trail: Trail = (),
) -> None:
    """Refuse what does not fit `message` under the proto3 JSON mapping.

    With `decoded`, each bytes field of an object (not of a map or a wrapper)
    is decoded here, once, taken out of `value` and appended to `decoded`
    for `fill_bytes` to set after json_format has parsed the rest (which
    would decode the base64 a second time)."""
    name = message.full_name
    if name in FREE_FORM:
        return
    if name == "google.protobuf.Timestamp":
        _check_text_form(value, Timestamp, path, "an RFC 3339 timestamp string")
        return
    if name == "google.protobuf.Duration":
        _check_text_form(value, Duration, path, 'a duration string such as "1.5s"')
        return
    if name == "google.protobuf.FieldMask":
        _check_text_form(value, FieldMask, path, "a comma-separated field mask string")
        return
    if name in WRAPPERS:
        _check_singular(value, message.fields_by_name["value"], path)
        return
    if not isinstance(value, dict):
        raise _wrong_type(path or "body", "a JSON object")
    fields = _fields_by_json_key(message)
    seen: set[str] = set()
    for key, item in value.items():
        field_path = f"{path}.{key}" if path else key
        fd = fields.get(key)
        if fd is None:
            shown = f"{path}.{errors.shown_name(key)}" if path else errors.shown_name(key)
            raise errors.malformed(f"unknown field {shown!r} in {name}", shown)
        if fd.name in seen:
            raise errors.malformed(f"{field_path}: given twice (as name and JSON name)", field_path)
        seen.add(fd.name)
        if item is None:
            continue
        if decoded is not None and fd.type == F.TYPE_BYTES and not is_map(fd):
            if is_repeated(fd):
                if not isinstance(item, list):
                    raise _wrong_type(field_path, "a JSON array")
                values = []
                for index, element in enumerate(item):
                    element_path = f"{field_path}[{index}]"
                    if not isinstance(element, str):
                        raise _wrong_type(element_path, "a base64 string")
                    values.append(decode_base64(element, element_path))
                decoded.append((trail, fd.name, values))
            else:
                if not isinstance(item, str):
                    raise _wrong_type(field_path, "a base64 string")
                decoded.append((trail, fd.name, decode_base64(item, field_path)))
            value[key] = None  # json_format skips it; fill_bytes sets it
            continue
        if is_map(fd):
            if not isinstance(item, dict):
                raise _wrong_type(field_path, "a JSON object (map)")
            key_fd = fd.message_type.fields_by_name["key"]
            value_fd = fd.message_type.fields_by_name["value"]
            for map_key, map_value in item.items():
                entry_path = f"{field_path}[{json.dumps(errors.shown_name(map_key))}]"
                _check_map_key(map_key, key_fd, entry_path)
                if map_value is None and value_fd.message_type is None:
                    raise errors.malformed(f"{entry_path}: null is not a value", entry_path)
                if map_value is not None:
                    _check_singular(map_value, value_fd, entry_path)
        elif is_repeated(fd):
            if not isinstance(item, list):
                raise _wrong_type(field_path, "a JSON array")
            for index, element in enumerate(item):
                element_path = f"{field_path}[{index}]"
                if element is None:
                    raise errors.malformed(
                        f"{element_path}: null is not allowed in a list", element_path
                    )
                if decoded is not None and _is_plain_message(fd):
                    check_json(
                        element,
                        fd.message_type,
                        element_path,
                        decoded,
                        (*trail, (fd.name, index)),
                    )
                else:
                    _check_singular(element, fd, element_path)
        elif decoded is not None and _is_plain_message(fd):
            check_json(item, fd.message_type, field_path, decoded, (*trail, (fd.name, None)))
        else:
            _check_singular(item, fd, field_path)


def _is_plain_message(fd: FieldDescriptor) -> bool:
    """A message field whose JSON form is an object of its fields."""
    return fd.type == F.TYPE_MESSAGE and fd.message_type.full_name not in _SPECIAL_FORMS


def fill_bytes(message: Message, decoded: DecodedBytes) -> None:
    """Set the bytes `check_json` decoded on the parsed message."""
    for trail, name, data in decoded:
        target: Any = message
        for field_name, index in trail:
            target = getattr(target, field_name)
            if index is not None:
                target = target[index]
        if isinstance(data, list):
            getattr(target, name).extend(data)
        else:
            setattr(target, name, data)


# RFC 3339 as protobuf's JSON form writes it, in ASCII digits, with an offset
# a clock can show: protobuf's own parser also takes "+24:00" and digits of
# other scripts ("２０２６").
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)


def _timestamp_text(text: str) -> bool:
    return _RFC3339.fullmatch(text) is not None


def _check_text_form(value: Any, cls: type, path: str, expected: str) -> None:
    if not isinstance(value, str):
        raise _wrong_type(path, expected)
    if cls is Timestamp and not _timestamp_text(value):
        raise errors.malformed(f"{path}: expected {expected}", path)
    try:
        cls().FromJsonString(value)
    except (ValueError, TypeError):
        raise errors.malformed(f"{path}: expected {expected}", path) from None


def _check_map_key(key: str, fd: FieldDescriptor, path: str) -> None:
    if fd.type in INT_RANGES:
        _check_integer_text(key, fd, path)
    elif fd.type == F.TYPE_BOOL and key not in ("true", "false"):
        raise _wrong_type(path, "a map key of true or false")


def _check_integer_text(text: str, fd: FieldDescriptor, path: str) -> int:
    if not _INTEGER_TEXT.fullmatch(text.strip()):
        raise _wrong_type(path, "an integer")
    if len(text.strip()) > _MAX_INTEGER_DIGITS:
        low, high = INT_RANGES[fd.type]
        raise errors.malformed(f"{path}: out of range [{low}, {high}]", path)
    return _in_range(int(text), fd, path)


def _in_range(number: int, fd: FieldDescriptor, path: str) -> int:
    low, high = INT_RANGES[fd.type]
    if not low <= number <= high:
        raise errors.malformed(f"{path}: out of range [{low}, {high}]", path)
    return number


def _check_singular(value: Any, fd: FieldDescriptor, path: str) -> None:
    kind = fd.type
    if kind == F.TYPE_MESSAGE or kind == F.TYPE_GROUP:
        check_json(value, fd.message_type, path)
    elif kind == F.TYPE_STRING:
        if not isinstance(value, str):
            raise _wrong_type(path, "a string")
    elif kind == F.TYPE_BYTES:
        if not isinstance(value, str):
            raise _wrong_type(path, "a base64 string")
        decode_base64(value, path)
    elif kind == F.TYPE_BOOL:
        if not isinstance(value, bool):
            raise _wrong_type(path, "true or false")
    elif kind == F.TYPE_ENUM:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise _wrong_type(path, f"one of the {fd.enum_type.name} names")
        if isinstance(value, str) and value not in fd.enum_type.values_by_name:
            raise errors.malformed(
                f"{path}: expected one of {', '.join(fd.enum_type.values_by_name)}", path
            )
        if isinstance(value, int) and not -(2**31) <= value < 2**31:
            raise errors.malformed(f"{path}: enum number out of range", path)
    elif kind in INT_RANGES:
        if isinstance(value, bool):
            raise _wrong_type(path, "an integer")
        if isinstance(value, HugeInteger):
            low, high = INT_RANGES[fd.type]
            raise errors.malformed(f"{path}: out of range [{low}, {high}]", path)
        if isinstance(value, float):
            if not value.is_integer():
                raise _wrong_type(path, "an integer")
            value = int(value)
        if isinstance(value, str):
            _check_integer_text(value, fd, path)
        elif isinstance(value, int):
            _in_range(value, fd, path)
        else:
            raise _wrong_type(path, "an integer")
    elif kind in FLOAT_TYPES:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _wrong_type(path, "a number")
        if (
            isinstance(value, str)
            and value not in _FLOAT_WORDS
            and not _FLOAT_TEXT.fullmatch(value)
        ):
            raise _wrong_type(path, "a number")


# --- query strings and path variables --------------------------------------


def scalar_from_text(fd: FieldDescriptor, text: str, name: str) -> Any:
    """A query or path value converted for field `fd`; INVALID_FIELD when it does not fit."""
    kind = fd.type
    if kind == F.TYPE_STRING:
        return text
    if kind == F.TYPE_BYTES:
        return decode_base64(text, name)
    if kind == F.TYPE_BOOL:
        lowered = text.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise errors.invalid_field(name, "expected true or false")
    if kind == F.TYPE_ENUM:
        value = fd.enum_type.values_by_name.get(text)
        if value is None:
            raise errors.invalid_field(
                name, f"expected one of {', '.join(fd.enum_type.values_by_name)}"
            )
        return value.number
    if kind in INT_RANGES:
        if not _INTEGER_TEXT.fullmatch(text):
            raise errors.invalid_field(name, "expected an integer")
        low, high = INT_RANGES[kind]
        if len(text) > _MAX_INTEGER_DIGITS or not low <= int(text) <= high:
            raise errors.invalid_field(name, f"out of range [{low}, {high}]")
        return int(text)
    if kind in FLOAT_TYPES:
        if text in _FLOAT_WORDS:
            return float(text.replace("Infinity", "inf").replace("NaN", "nan"))
        if not _FLOAT_TEXT.fullmatch(text):
            raise errors.invalid_field(name, "expected a number")
        real = float(text)
        if kind == F.TYPE_FLOAT and math.isfinite(real) and abs(real) > 3.4028234663852886e38:
            raise errors.invalid_field(name, "out of range for a float")
        return real
    raise errors.invalid_field(name, "cannot be given as text")


def query_leaf_settable(fd: FieldDescriptor) -> bool:
    """Whether a query-string value can set `fd` (a scalar, or a well-known
    message with a text form)."""
    if fd.type != F.TYPE_MESSAGE:
        return True
    name = fd.message_type.full_name
    return not is_repeated(fd) and (
        name in WRAPPERS
        or name
        in ("google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask")
    )


def resolve_parameter(message: Descriptor, name: str) -> list[FieldDescriptor] | None:
    """Fields along a dotted parameter name (proto or JSON names), or None."""
    path: list[FieldDescriptor] = []
    current: Descriptor | None = message
    parts = name.split(".")
    for position, part in enumerate(parts):
        if current is None:
            return None
        fd = _fields_by_json_key(current).get(part)
        if fd is None:
            return None
        path.append(fd)
        last = position == len(parts) - 1
        if last:
            return path if (not is_map(fd) and query_leaf_settable(fd)) else None
        if (
            fd.type != F.TYPE_MESSAGE
            or is_repeated(fd)
            or fd.message_type.full_name.startswith("google.protobuf.")
        ):
            return None
        current = fd.message_type
    return None


def _set_leaf(message: Message, path: list[FieldDescriptor], texts: list[str], name: str) -> None:
    parent = message
    for fd in path[:-1]:
        parent = getattr(parent, fd.name)
    leaf = path[-1]
    if leaf.type == F.TYPE_MESSAGE:
        target = getattr(parent, leaf.name)
        full_name = leaf.message_type.full_name
        try:
            if full_name in WRAPPERS:
                target.value = scalar_from_text(
                    leaf.message_type.fields_by_name["value"], texts[0], name
                )
            elif full_name == "google.protobuf.Timestamp" and not _timestamp_text(texts[0]):
                raise ValueError(texts[0])
            else:
                target.FromJsonString(texts[0])
        except ValueError:
            expected = {
                "google.protobuf.Timestamp": "an RFC 3339 timestamp such as 2024-05-01T00:00:00Z"
            }.get(full_name, "a valid value")
            raise errors.invalid_field(name, f"expected {expected}") from None
        return
    values = [scalar_from_text(leaf, text, name) for text in texts]
    if is_repeated(leaf):
        getattr(parent, leaf.name).extend(values)
    else:
        setattr(parent, leaf.name, values[0])


def _get_leaf(message: Message, path: list[FieldDescriptor]) -> Any:
    value: Any = message
    for fd in path:
        value = getattr(value, fd.name)
    return value


def parse_query(raw_query: bytes) -> dict[str, list[str]]:
    if not raw_query:
        return {}
    try:
        pairs = urllib.parse.parse_qsl(
            raw_query.decode("ascii"), keep_blank_values=True, errors="strict"
        )
    except (UnicodeDecodeError, ValueError):
        raise errors.malformed("the query string is not valid percent-encoded UTF-8") from None
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return grouped


def _descriptor(message: Message) -> Descriptor:
    # types-protobuf types Message.DESCRIPTOR as a union with upb's class, which
    # is this same class under the upb backend.
    return cast(Descriptor, message.DESCRIPTOR)


def apply_query(message: Message, route: Route, query: Mapping[str, list[str]]) -> None:
    if not query:
        return
    if route.body == "*":
        # The OAuth token route also takes RFC 6749's form body (gateway.oauth).
        body = "body (a form or JSON)" if route.full_name == oauth.TOKEN_RPC else "JSON body"
        raise errors.malformed(
            f"this route takes every field in the {body}; query parameters are not accepted",
            next(iter(query)),
        )
    bound = route.path_fields()
    for name, texts in query.items():
        path = resolve_parameter(_descriptor(message), name)
        if path is None:
            shown = errors.shown_name(name)
            raise errors.malformed(f"unknown query parameter {shown!r}", shown)
        proto_path = ".".join(fd.name for fd in path)
        if proto_path in bound:
            raise errors.malformed(f"{name} is given by the path", name)
        if route.body and path[0].name == route.body:
            raise errors.malformed(f"{name} belongs in the JSON body", name)
        if len(texts) > 1 and not is_repeated(path[-1]):
            raise errors.invalid_field(name, "given more than once")
        _set_leaf(message, path, texts, name)


def apply_path(message: Message, route: Route, params: Mapping[str, str]) -> None:
    for field_path, text in params.items():
        path = [*_resolve_proto_path(_descriptor(message), field_path)]
        current = _get_leaf(message, path)
        value = scalar_from_text(path[-1], text, field_path)
        if route.body and current and current != value:
            raise errors.malformed(
                f"{field_path} is given by the path; leave it out of the body", field_path
            )
        _set_leaf(message, path, [text], field_path)


def _resolve_proto_path(message: Descriptor, field_path: str) -> Iterable[FieldDescriptor]:
    current = message
    for part in field_path.split("."):
        fd = current.fields_by_name[part]
        yield fd
        current = fd.message_type


def build_request(
    route: Route,
    path_params: Mapping[str, str],
    query: Mapping[str, list[str]],
    body: bytes | None,
) -> Message:
    """The request message of `route` from path, query and (parsed) body."""
    message = route.request_class()
    if route.body:
        parsed = parse_json(body) if body else {}
        # Bytes (base64 images) are decoded once, by check_json.
        decoded: DecodedBytes = []
        if route.body == "*":
            check_json(parsed, _descriptor(message), decoded=decoded)
            _parse_into(parsed, message)
        else:
            fd = message.DESCRIPTOR.fields_by_name[route.body]
            wrapper = {fd.json_name: parsed}
            check_json(wrapper, _descriptor(message), decoded=decoded)
            _parse_into(wrapper, message)
        fill_bytes(message, decoded)
    elif body:
        raise errors.malformed("this route takes no request body")
    apply_query(message, route, query)
    apply_path(message, route, path_params)
    return message


def _parse_into(parsed: Any, message: Message) -> None:
    try:
        json_format.ParseDict(parsed, message, ignore_unknown_fields=False)
    except (json_format.ParseError, ValueError, TypeError, RecursionError):
        # check_json let it through, so it is a rarer shape problem; the
        # parser's text may quote values, so it stays in the gateway.
        raise errors.malformed(f"the body does not fit {message.DESCRIPTOR.full_name}") from None


def validate(message: Message) -> None:
    """The contract's validation layer (identity_runtime.validation), each
    refusal naming the field as the API spells it (lowerCamel JSON names)."""
    violation = validation.first_violation(message)
    if violation is not None:
        raise violation.renamed(json_names=True)


_PATH_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[[^\]]*\])*)")


def api_field_path(message: Descriptor, proto_path: str) -> str | None:
    """A service's field path (`bundle.frames[2].image.data`, proto names) as
    the API spells it (lowerCamel JSON names), or None when `message` has no
    such field (an error about something the caller did not send)."""
    current: Descriptor | None = message
    parts = []
    for step in proto_path.split("."):
        found = _PATH_STEP.fullmatch(step)
        if current is None or found is None:
            return None
        fd = _fields_by_json_key(current).get(found.group(1))
        if fd is None:
            return None
        parts.append(fd.json_name + found.group(2))  # type: ignore[attr-defined]
        current = fd.message_type if fd.type == F.TYPE_MESSAGE else None
    return ".".join(parts)


def rename_error_field(error: DomainError, message: Descriptor) -> None:
    """Rename a backend refusal's `field` (and the message's leading field
    name) to the API's spelling, in place."""
    field = error.metadata.get("field", "")
    renamed = api_field_path(message, field) if field else None
    if renamed is not None:
        error.rename_field(renamed)


# --- responses ---------------------------------------------------------------


def render_response(route: Route, response: Message) -> tuple[bytes, str]:
    """(body, content type) of a successful call."""
    if route.response_body:
        fd = response.DESCRIPTOR.fields_by_name[route.response_body]
        if (
            fd.type == F.TYPE_MESSAGE
            and fd.message_type.full_name == HTTP_BODY
            and not is_repeated(fd)
        ):
            http_body = getattr(response, fd.name)
            return bytes(http_body.data), http_body.content_type or "application/octet-stream"
        whole = json_format.MessageToDict(response, always_print_fields_with_no_presence=True)
        return _dump(whole.get(fd.json_name)), "application/json"
    return _dump(
        json_format.MessageToDict(response, always_print_fields_with_no_presence=True)
    ), "application/json"


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
