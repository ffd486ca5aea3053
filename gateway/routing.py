"""The route table, compiled from the contracts' `google.api.http` rules.

Nothing here is written per route: every RPC of `identity.*` with an HTTP
rule (and each of its `additional_bindings`) becomes a `Route` whose path
template is compiled to a regular expression over the raw (still
percent-encoded) request path. Template grammar (google/api/http.proto):

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;

A route also carries what the gateway enforces for the RPC: the scope a key
needs (`identity.common.v1.access`) and its rate limit
(`identity.common.v1.rate_limit`). A contract the gateway cannot serve (an
unknown field in a template, a rate limit keyed by a field the request does
not have, two RPCs on one method and path) fails at start-up.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import (
    Descriptor,
    FieldDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)
from google.protobuf.message import Message

from gateway import errors
from identity_platform_api.common.v1 import options_pb2
from identity_runtime import console_roles, descriptors
from identity_runtime.ratelimit import RateLimitPolicy, declared_policy

GATEWAY_PACKAGE = "gateway"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LITERAL = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=@%]+")
_SCOPE_NAMES = {
    options_pb2.SCOPE_UNSPECIFIED: "public",
    options_pb2.SCOPE_PUBLIC: "public",
    options_pb2.SCOPE_INTERNAL: "internal",
    options_pb2.SCOPE_ANONYMOUS: "anonymous",
}
RATE_LIMIT_KEYS = ("customer", "org", "ip")
# The request field a per-customer rate limit counts by.
CUSTOMER_FIELD = "customer_id"


class RouteError(Exception):
    """The contracts declare a route the gateway cannot serve."""


@dataclass(frozen=True)
class Variable:
    # Dotted field path in the request message: "customer_id", "parent.name".
    field_path: str
    # True for `{name=**}` and other templates spanning several segments.
    multi_segment: bool


@dataclass(frozen=True)
class PathTemplate:
    template: str
    regex: re.Pattern[str]
    variables: tuple[Variable, ...]
    literal_segments: int

    @property
    def openapi_path(self) -> str:
        """`/a/{b.c=**}:verb` -> `/a/{b.c}:verb` (OpenAPI has no multi-segment parameters)."""
        return re.sub(r"\{([^}=]+)(=[^}]*)?\}", r"{\1}", self.template)

    def match(self, raw_path: str) -> dict[str, str] | None:
        found = self.regex.fullmatch(raw_path)
        if found is None:
            return None
        values = {}
        for index, variable in enumerate(self.variables):
            raw = found.group(f"v{index}")
            if variable.multi_segment:
                # RFC 6570 reserved expansion: "/" separates segments, %2F stays encoded.
                raw = re.sub(r"%2[Ff]", "%252F", raw)
            values[variable.field_path] = urllib.parse.unquote(raw, errors="strict")
        return values


def _segments_regex(
    text: str, template: str, variables: list[Variable] | None, in_variable: bool
) -> tuple[str, int, bool]:
    """Regex for "/"-separated segments; (regex, literal count, multi-segment)."""
    parts = []
    literals = 0
    multi = False
    segments = _split_segments(text, template)
    for position, segment in enumerate(segments):
        if segment == "**":
            if position != len(segments) - 1:
                raise RouteError(f"{template}: '**' must be the last segment")
            parts.append(r"[^?#]*" if in_variable else r"[^?#]+")
            multi = True
        elif segment == "*":
            parts.append(r"[^/]+")
        elif segment.startswith("{"):
            if in_variable or variables is None:
                raise RouteError(f"{template}: nested variables are not allowed")
            inner = segment[1:-1]
            field_path, eq, sub = inner.partition("=")
            if not all(_IDENT.fullmatch(p) for p in field_path.split(".")):
                raise RouteError(f"{template}: bad field path {field_path!r}")
            sub_regex, sub_literals, sub_multi = _segments_regex(
                sub if eq else "*", template, None, True
            )
            literals += sub_literals
            index = len(variables)
            variables.append(Variable(field_path, sub_multi or "/" in (sub if eq else "")))
            parts.append(f"(?P<v{index}>{sub_regex})")
        else:
            if not _LITERAL.fullmatch(segment):
                raise RouteError(f"{template}: bad literal segment {segment!r}")
            parts.append(re.escape(segment))
            literals += 1
    return "/".join(parts), literals, multi


def _split_segments(text: str, template: str) -> list[str]:
    """Split on "/" outside braces."""
    segments, depth, current = [], 0, ""
    for char in text:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise RouteError(f"{template}: unbalanced braces")
        if char == "/" and depth == 0:
            segments.append(current)
            current = ""
        else:
            current += char
    if depth != 0:
        raise RouteError(f"{template}: unbalanced braces")
    segments.append(current)
    if any(s == "" for s in segments):
        raise RouteError(f"{template}: empty segment")
    return segments


def compile_template(template: str) -> PathTemplate:
    if not template.startswith("/"):
        raise RouteError(f"{template}: a path template starts with '/'")
    body, verb = template[1:], ""
    # A trailing ":verb" outside braces.
    last = body.rsplit("/", 1)[-1]
    if ":" in last and "}" not in last.rsplit(":", 1)[1]:
        body, verb = body.rsplit(":", 1)
        if not _LITERAL.fullmatch(verb):
            raise RouteError(f"{template}: bad verb {verb!r}")
    variables: list[Variable] = []
    regex, literals, _ = _segments_regex(body, template, variables, False)
    if verb:
        regex += ":" + re.escape(verb)
    return PathTemplate(template, re.compile("/" + regex), tuple(variables), literals)


@dataclass(frozen=True)
class Route:
    method: MethodDescriptor
    # HTTP method: "GET", "POST", ...
    verb: str
    path: PathTemplate
    # "" (no body), "*" (the whole request) or a top-level field name.
    body: str
    # "" (the whole response) or a top-level field name.
    response_body: str
    # Proto package of the backend ("kyc_tier"), or "gateway" (served here).
    package: str
    # "public", "internal" or "anonymous".
    scope: str
    rate_limit: RateLimitPolicy | None
    request_class: type[Message] = field(repr=False)
    response_class: type[Message] = field(repr=False)
    # A browser's SDK session token may call it, for its own customer (gateway.sdk_access).
    sdk_session: bool = False
    # The console role a console session needs ("analyst", "admin"; "" on an
    # anonymous route): identity_runtime.console_roles.
    console_role: str = ""

    @property
    def rpc(self) -> str:
        """gRPC method path: "/identity.kyc_tier.v1.CustomerService/GetCustomer"."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def full_name(self) -> str:
        return f"{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def service(self) -> ServiceDescriptor:
        return self.method.containing_service

    @property
    def streams(self) -> bool:
        """The response is a stream of HTTP body chunks."""
        return bool(self.method.server_streaming)

    def path_fields(self) -> set[str]:
        return {v.field_path for v in self.path.variables}


def http_rule(method: MethodDescriptor) -> http_pb2.HttpRule | None:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return None
    return options.Extensions[annotations_pb2.http]


def access_scope(method: MethodDescriptor) -> str:
    options = method.GetOptions()
    if not options.HasExtension(options_pb2.access):
        return "public"
    scope = options.Extensions[options_pb2.access].scope
    if scope not in _SCOPE_NAMES:  # SCOPE_MESH: mesh services only, never a route
        raise RouteError(f"{method.full_name} is mesh-only but has an HTTP route")
    return _SCOPE_NAMES[scope]


def sdk_session_route(method: MethodDescriptor) -> bool:
    """Whether an SDK session token may call the RPC; such a request must name
    its customer (a string `customer_id`), or the gateway could not hold the
    token to its own customer."""
    options = method.GetOptions()
    if not options.Extensions[options_pb2.access].sdk_session:
        return False
    field = method.input_type.fields_by_name.get("customer_id")
    if field is None or field.type != field.TYPE_STRING:
        raise RouteError(f"{method.full_name}: an sdk_session route needs a customer_id field")
    return True


def rate_limit(method: MethodDescriptor) -> RateLimitPolicy | None:
    policy = declared_policy(method)
    if policy is None:
        return None
    name = f"{method.containing_service.full_name}/{method.name}"
    if policy.requests <= 0 or policy.per_seconds <= 0:
        raise RouteError(f"{name}: rate_limit needs positive requests and per_seconds")
    if policy.per not in RATE_LIMIT_KEYS:
        raise RouteError(f"{name}: rate_limit per must be one of {', '.join(RATE_LIMIT_KEYS)}")
    if policy.per == "customer":
        customer = method.input_type.fields_by_name.get(CUSTOMER_FIELD)
        if (
            customer is None
            or customer.type != FieldDescriptor.TYPE_STRING
            or _is_repeated(customer)
        ):
            raise RouteError(
                f"{name}: a per-customer rate limit needs a string {CUSTOMER_FIELD} in the request"
            )
    return policy


def _is_repeated(fd: FieldDescriptor) -> bool:
    return bool(fd.is_repeated)


def resolve_field_path(message: Descriptor, path: str) -> list[FieldDescriptor]:
    """The fields along a dotted path; intermediate fields are singular messages."""
    fields = []
    current: Descriptor | None = message
    for part in path.split("."):
        if current is None:
            raise KeyError(path)
        fd = current.fields_by_name.get(part)
        if fd is None:
            raise KeyError(path)
        fields.append(fd)
        current = (
            fd.message_type
            if fd.type == FieldDescriptor.TYPE_MESSAGE and not _is_repeated(fd)
            else None
        )
    return fields


def _bindings(rule: http_pb2.HttpRule) -> Iterable[http_pb2.HttpRule]:
    yield rule
    for extra in rule.additional_bindings:
        if extra.additional_bindings:
            raise RouteError("additional_bindings cannot nest")
        yield extra


def _streams_http_body(method: MethodDescriptor, response_body: str) -> bool:
    """Each message of the stream is one chunk of the HTTP body (grpc-gateway's
    rule for server-streaming HttpBody responses)."""
    fd = method.output_type.fields_by_name.get(response_body) if response_body else None
    return (
        fd is not None
        and fd.type == FieldDescriptor.TYPE_MESSAGE
        and fd.message_type.full_name == "google.api.HttpBody"
        and not _is_repeated(fd)
    )


def _verb_and_template(rule: http_pb2.HttpRule) -> tuple[str, str]:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        raise RouteError("an HTTP rule without a pattern")
    if kind == "custom":
        return rule.custom.kind.upper(), rule.custom.path
    return kind.upper(), getattr(rule, kind)


def _build_route(method: MethodDescriptor, rule: http_pb2.HttpRule) -> Route:
    name = f"{method.containing_service.full_name}/{method.name}"
    if method.client_streaming:
        raise RouteError(f"{name}: client-streaming RPCs cannot carry an HTTP route")
    if method.server_streaming and not _streams_http_body(method, rule.response_body):
        raise RouteError(
            f"{name}: a server-streaming RPC carries an HTTP route only as a stream of "
            "google.api.HttpBody chunks (response_body naming one)"
        )
    verb, template_text = _verb_and_template(rule)
    try:
        template = compile_template(template_text)
    except RouteError as exc:
        raise RouteError(f"{name}: {exc}") from None
    request, response = method.input_type, method.output_type
    for variable in template.variables:
        try:
            path_fields = resolve_field_path(request, variable.field_path)
        except KeyError:
            raise RouteError(
                f"{name}: {template_text} binds unknown field {variable.field_path!r}"
            ) from None
        leaf = path_fields[-1]
        if leaf.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP) or _is_repeated(
            leaf
        ):
            raise RouteError(
                f"{name}: path variable {variable.field_path!r} must be a singular scalar field"
            )
    if rule.body not in ("", "*"):
        fd = request.fields_by_name.get(rule.body)
        if fd is None:
            raise RouteError(f"{name}: body names unknown field {rule.body!r}")
    if rule.response_body and rule.response_body not in response.fields_by_name:
        raise RouteError(f"{name}: response_body names unknown field {rule.response_body!r}")
    if verb in ("GET", "DELETE") and rule.body:
        raise RouteError(f"{name}: {verb} routes take no body")
    package = descriptors.service_package(method.containing_service.full_name)
    return Route(
        method=method,
        verb=verb,
        path=template,
        body=rule.body,
        response_body=rule.response_body,
        package=package,
        scope=access_scope(method),
        rate_limit=rate_limit(method),
        request_class=message_factory.GetMessageClass(request),
        response_class=message_factory.GetMessageClass(response),
        sdk_session=sdk_session_route(method),
        console_role=console_roles.required_role(method),
    )


def build_routes(services: Sequence[ServiceDescriptor] | None = None) -> list[Route]:
    """Every HTTP binding of every contract service."""
    routes = []
    for service in services if services is not None else descriptors.services():
        for method in service.methods:
            rule = http_rule(method)
            if rule is None:
                continue
            for binding in _bindings(rule):
                routes.append(_build_route(method, binding))
    return routes


class RouteTable:
    def __init__(self, routes: Sequence[Route], known_packages: Iterable[str]):
        known = set(known_packages) | {GATEWAY_PACKAGE}
        seen: dict[tuple[str, str], Route] = {}
        for route in routes:
            if route.package not in known:
                raise RouteError(
                    f"{route.full_name}: no service of the mesh serves package {route.package!r}"
                )
            key = (route.verb, route.path.regex.pattern)
            if key in seen:
                raise RouteError(
                    f"{route.verb} {route.path.template} is bound twice: "
                    f"{seen[key].full_name} and {route.full_name}"
                )
            seen[key] = route
        # Most specific first: more literal segments, then fewer variables.
        self.routes = sorted(
            routes, key=lambda r: (-r.path.literal_segments, len(r.path.variables), r.path.template)
        )

    def match(self, verb: str, raw_path: str) -> tuple[Route, dict[str, str]]:
        """The route for a request, or ROUTE_NOT_FOUND / METHOD_NOT_ALLOWED."""
        allowed: list[str] = []
        for route in self.routes:
            try:
                params = route.path.match(raw_path)
            except UnicodeDecodeError:
                raise errors.malformed("the path is not valid percent-encoded UTF-8") from None
            if params is None:
                continue
            if route.verb == verb:
                return route, params
            if route.verb not in allowed:
                allowed.append(route.verb)
        if allowed:
            raise errors.method_not_allowed(sorted(allowed))
        raise errors.route_not_found()

    def __iter__(self) -> Any:
        return iter(self.routes)

    def __len__(self) -> int:
        return len(self.routes)
