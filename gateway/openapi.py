"""OpenAPI 3.1 document of the REST surface, generated from the contracts.

Built from the same `Route`s the gateway serves, so the document cannot drift
from the routes. Schemas follow the proto3 JSON mapping the gateway speaks:
lowerCamel field names, 64-bit integers as strings, bytes as base64 strings,
enums as their value names, Timestamps as RFC 3339 date-times, maps as
objects, repeated fields as arrays. Descriptions come from the proto
comments (see gateway.comments).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from gateway.comments import contract_comments
from gateway.openapi_errors import (
    ERROR_SCHEMA,
    TOKEN_ERROR_SCHEMA,
    error_responses,
    error_schema,
    known_reasons,
    responses_of,
    token_error_schema,
    upload_errors,
)
from gateway.openapi_names import shorten
from gateway.routing import Route
from gateway.transcoding import HTTP_BODY, WRAPPERS, is_map, is_repeated, query_leaf_settable
from identity_platform_api.face_match.v1 import submissions_pb2
from identity_runtime.field_rules import declared_schema, is_required, rules_of
from identity_runtime.validation import json_schema_constraints

F = FieldDescriptor
OPENAPI_PATH = "/api/openapi.json"
HEALTH_RPC = "identity.gateway.v1.GatewayService/GetHealth"
_MEDIA_TYPE = re.compile(r"[a-z]+/[a-z0-9.+\-]+")
_REF = "#/components/schemas/"
_QUERY_DEPTH = 3
# A partner API key, in either header: every keyed operation accepts it.
API_KEY_SECURITY: list[dict[str, list[str]]] = [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}]
SDK_SESSION_SCHEME = "SdkSession"

_SCALARS: dict[int, dict[str, Any]] = {
    F.TYPE_STRING: {"type": "string"},
    F.TYPE_BOOL: {"type": "boolean"},
    F.TYPE_BYTES: {"type": "string", "format": "byte", "contentEncoding": "base64"},
    F.TYPE_DOUBLE: {"type": "number", "format": "double"},
    F.TYPE_FLOAT: {"type": "number", "format": "float"},
    F.TYPE_INT32: {"type": "integer", "format": "int32"},
    F.TYPE_SINT32: {"type": "integer", "format": "int32"},
    F.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    F.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295},
    F.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295},
    # The proto3 JSON mapping writes 64-bit integers as strings.
    F.TYPE_INT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    F.TYPE_SINT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    F.TYPE_SFIXED64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    F.TYPE_UINT64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    F.TYPE_FIXED64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {
        "type": "string",
        "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$",
        "examples": ["1.5s"],
    },
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": "Comma-separated lowerCamel field paths.",
    },
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
    },
}


def _first_sentence(text: str) -> str:
    first = text.split("\n\n", 1)[0]
    match = re.match(r"(.+?[.:])(\s|$)", first)
    return (match.group(1) if match else first).rstrip(":.")


class _Schemas:
    """Component schemas, collected as messages and enums are referenced."""

    def __init__(
        self,
        request_only: frozenset[str] = frozenset(),
        response_only: frozenset[str] = frozenset(),
    ) -> None:
        self.components: dict[str, Any] = {}
        self.comments = contract_comments()
        # Messages only requests carry: their fields state the validation
        # layer's rules (a message in a response too keeps plain types).
        self.request_only = request_only
        self.response_only = response_only

    def ref(self, name: str) -> dict[str, str]:
        return {"$ref": _REF + name}

    def message(self, message: Descriptor) -> dict[str, Any]:
        name = message.full_name
        if name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[name])
        if name in WRAPPERS:
            inner = dict(_SCALARS[message.fields_by_name["value"].type])
            inner["type"] = [inner["type"], "null"]
            return inner
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursive messages
            schema: dict[str, Any] = {"type": "object", "properties": {}}
            if self.comments.get(name):
                schema["description"] = self.comments[name]
            for fd in message.fields:
                schema["properties"][fd.json_name] = self.field(fd, f"{name}.{fd.name}")
            required = self.required(message.fields, name)
            if required:
                schema["required"] = required
            self.components[name] = schema
        return self.ref(name)

    def required(self, fields: Iterable[Any], message: str) -> list[str]:
        """Required properties: in a request-only message, the fields the
        contract requires; in a response-only one, every field the gateway
        always writes (no presence: not a message, not `optional`)."""
        if message in self.request_only:
            return [fd.json_name for fd in fields if is_required(fd)]
        if message in self.response_only:
            return [
                fd.json_name
                for fd in fields
                if fd.type != F.TYPE_MESSAGE or is_map(fd) or is_repeated(fd)
                if fd.containing_oneof is None
            ]
        return []

    def example(self, message: Descriptor) -> dict[str, Any]:
        """An example request built from the examples its fields declare."""
        example: dict[str, Any] = {}
        for fd in message.fields:
            rules = rules_of(fd)
            if rules is not None and rules.example:
                example[fd.json_name] = rules.example
        return example

    def enum(self, enum: EnumDescriptor) -> dict[str, Any]:
        name = enum.full_name
        if name not in self.components:
            lines = [self.comments.get(name, "")]
            documented = [
                f"- `{value.name}`: {self.comments[f'{name}.{value.name}']}"
                for value in enum.values
                if self.comments.get(f"{name}.{value.name}")
            ]
            if documented:
                lines.append("\n".join(documented))
            schema: dict[str, Any] = {
                "type": "string",
                "enum": [value.name for value in enum.values],
            }
            description = "\n\n".join(line for line in lines if line)
            if description:
                schema["description"] = description
            self.components[name] = schema
        return self.ref(name)

    def singular(self, fd: FieldDescriptor) -> dict[str, Any]:
        if fd.type in (F.TYPE_MESSAGE, F.TYPE_GROUP):
            return self.message(fd.message_type)
        if fd.type == F.TYPE_ENUM:
            return self.enum(fd.enum_type)
        return dict(_SCALARS[fd.type])

    def field(self, fd: FieldDescriptor, comment_key: str = "") -> dict[str, Any]:
        if is_map(fd):
            value_fd = fd.message_type.fields_by_name["value"]
            schema: dict[str, Any] = {
                "type": "object",
                "additionalProperties": self.singular(value_fd),
            }
        elif is_repeated(fd):
            schema = {"type": "array", "items": self.singular(fd)}
            if fd.containing_type.full_name in self.request_only:
                schema["items"] = {**schema["items"], **json_schema_constraints(fd)}
                schema.update(declared_schema(fd))
        else:
            schema = self.singular(fd)
            if fd.containing_type.full_name in self.request_only:
                schema = {**schema, **json_schema_constraints(fd)}
        description = self.comments.get(
            comment_key or f"{fd.containing_type.full_name}.{fd.name}", ""
        )
        if description:
            # A $ref with siblings is valid in 3.1; keeps the field's own text.
            schema = {**schema, "description": description}
        if fd.GetOptions().deprecated:
            schema["deprecated"] = True
        return schema


def _json_path(request: Descriptor, field_path: str) -> str:
    names, current = [], request
    for part in field_path.split("."):
        fd = current.fields_by_name[part]
        names.append(fd.json_name)
        current = fd.message_type
    return ".".join(names)


def _reachable(roots: Iterable[Descriptor]) -> set[str]:
    """Full names of the messages reachable from `roots` (themselves included)."""
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        message = pending.pop()
        if message.full_name in seen:
            continue
        seen.add(message.full_name)
        pending.extend(fd.message_type for fd in message.fields if fd.type == F.TYPE_MESSAGE)
    return seen


class _Builder:
    def __init__(self, routes: Iterable[Route]):
        self.routes = sorted(routes, key=lambda r: (r.path.template, r.verb))
        requests = _reachable(r.method.input_type for r in self.routes)
        responses = _reachable(r.method.output_type for r in self.routes)
        # The gateway's own answers (health) are not the transcoded messages.
        written = {
            name for name in responses - requests if not name.startswith("identity.gateway.")
        }
        self.schemas = _Schemas(frozenset(requests - responses), frozenset(written))
        self.comments = self.schemas.comments
        self.operation_ids: set[str] = set()

    def query_parameters(self, route: Route) -> list[dict[str, Any]]:
        excluded = route.path_fields()
        params: list[dict[str, Any]] = []

        def walk(
            message: Descriptor,
            proto_prefix: str,
            json_prefix: str,
            depth: int,
            visiting: frozenset[str],
        ) -> None:
            for fd in message.fields:
                proto_path = proto_prefix + fd.name
                if proto_path in excluded or (depth == 0 and fd.name == route.body) or is_map(fd):
                    continue
                if fd.type == F.TYPE_MESSAGE and not query_leaf_settable(fd):
                    nested = fd.message_type
                    if (
                        not is_repeated(fd)
                        and depth < _QUERY_DEPTH
                        and nested.full_name not in visiting
                        and not nested.full_name.startswith("google.")
                    ):
                        walk(
                            nested,
                            proto_path + ".",
                            json_prefix + fd.json_name + ".",
                            depth + 1,
                            visiting | {nested.full_name},
                        )
                    continue
                param = self.parameter(json_prefix + fd.json_name, "query", fd, self.schemas.field)
                if is_repeated(fd):
                    param["style"] = "form"
                    param["explode"] = True
                params.append(param)

        request = route.method.input_type
        walk(request, "", "", 0, frozenset({request.full_name}))
        return params

    def parameter(
        self,
        name: str,
        where: str,
        fd: FieldDescriptor,
        schema: Callable[[FieldDescriptor], dict[str, Any]],
    ) -> dict[str, Any]:
        """One OpenAPI parameter for `fd`; path parameters are required, as are
        query parameters whose field rules require them."""
        param: dict[str, Any] = {
            "name": name,
            "in": where,
            "required": where == "path" or is_required(fd),
            "schema": schema(fd),
        }
        constraints = json_schema_constraints(fd)
        if constraints and "$ref" not in param["schema"]:
            if param["schema"].get("type") == "array":
                param["schema"]["items"] = {**param["schema"]["items"], **constraints}
            else:
                param["schema"] = {**param["schema"], **constraints}
        description = self.comments.get(f"{fd.containing_type.full_name}.{fd.name}")
        if description:
            param["description"] = description
        return param

    def path_parameters(self, route: Route) -> list[dict[str, Any]]:
        request = route.method.input_type
        params = []
        for variable in route.path.variables:
            fd = request
            leaf = None
            for part in variable.field_path.split("."):
                leaf = fd.fields_by_name[part]
                fd = leaf.message_type
            assert leaf is not None
            name = _json_path(request, variable.field_path)
            params.append(self.parameter(name, "path", leaf, self.schemas.singular))
        return params

    def request_body(self, route: Route) -> dict[str, Any] | None:
        if not route.body:
            return None
        request = route.method.input_type
        if route.body == "*":
            bound = {v.field_path.split(".")[0] for v in route.path.variables}
            if bound:
                fields = [fd for fd in request.fields if fd.name not in bound]
                schema: dict[str, Any] = {
                    "type": "object",
                    "properties": {fd.json_name: self.schemas.field(fd) for fd in fields},
                }
                required = self.schemas.required(fields, request.full_name)
                if required:
                    schema["required"] = required
                description = self.comments.get(request.full_name)
                if description:
                    schema["description"] = description
            else:
                schema = self.schemas.message(request)
                fields = list(request.fields)
            example = {
                key: value
                for key, value in self.schemas.example(request).items()
                if key in {fd.json_name for fd in fields}
            }
            has_required = any(is_required(fd) for fd in fields)
        else:
            fd = request.fields_by_name[route.body]
            schema = self.schemas.field(fd)
            example, has_required = {}, is_required(fd)
        content: dict[str, Any] = {"schema": schema}
        if example:
            content["example"] = example
        return {"required": has_required, "content": {"application/json": content}}

    def success_response(self, route: Route) -> dict[str, Any]:
        response = route.method.output_type
        description = _first_sentence(self.comments.get(response.full_name, "")) or "Success."
        if route.response_body:
            fd = response.fields_by_name[route.response_body]
            if fd.type == F.TYPE_MESSAGE and fd.message_type.full_name == HTTP_BODY:
                comment = self.comments.get(f"{response.full_name}.{fd.name}", "")
                media_type = (
                    comment if _MEDIA_TYPE.fullmatch(comment) else "application/octet-stream"
                )
                return {
                    "description": f"The raw body ({media_type}).",
                    "content": {media_type: {"schema": {"type": "string"}}},
                }
            return {
                "description": description,
                "content": {"application/json": {"schema": self.schemas.field(fd)}},
            }
        return {
            "description": description,
            "content": {"application/json": {"schema": self.schemas.message(response)}},
        }

    def operation(self, route: Route) -> dict[str, Any]:
        service = route.service
        method_comment = self.comments.get(f"{service.full_name}.{route.method.name}", "")
        operation_id = f"{service.name}_{route.method.name}"
        suffix = 2
        while operation_id in self.operation_ids:
            operation_id = f"{service.name}_{route.method.name}_{suffix}"
            suffix += 1
        self.operation_ids.add(operation_id)
        notes = []
        if route.scope == "internal":
            notes.append("Needs an API key with the **internal** scope.")
        elif route.scope == "anonymous":
            notes.append("Needs no API key.")
        if route.sdk_session and route.scope != "anonymous":
            notes.append(
                "A browser may call it with its customer's SDK session token "
                "(`Authorization: Bearer sdk_...`) instead of an API key."
            )
        if route.console_role == "admin":
            notes.append("A console session needs the **admin** role (403 ADMIN_REQUIRED).")
        elif route.console_role == "analyst":
            notes.append("A console session needs the **analyst** or **admin** role.")
        if route.rate_limit is not None:
            notes.append(f"Rate limit: {route.rate_limit.text} (429 with Retry-After beyond it).")
        notes.append(f"gRPC: `{route.full_name}`.")
        operation: dict[str, Any] = {
            "operationId": operation_id,
            "tags": [service.name],
            "summary": _first_sentence(method_comment) or route.method.name,
            "description": "\n\n".join(p for p in (method_comment, " ".join(notes)) if p),
            "parameters": [
                {"$ref": "#/components/parameters/RequestId"},
                *self.path_parameters(route),
            ],
            "responses": {"200": self.success_response(route), **error_responses(route)},
            "x-identity-scope": route.scope,
        }
        if route.console_role:
            operation["x-identity-console-role"] = route.console_role
        if not route.body:
            operation["parameters"].extend(self.query_parameters(route))
        body = self.request_body(route)
        if body is not None:
            operation["requestBody"] = body
        if route.scope == "anonymous":
            operation["security"] = []
        elif route.sdk_session:
            # The flag the gateway holds an SDK session token to (sdk_access.check_route).
            operation["security"] = [*API_KEY_SECURITY, {SDK_SESSION_SCHEME: []}]
            operation["x-identity-sdk-session"] = True
        if route.rate_limit is not None:
            operation["x-identity-rate-limit"] = {
                "requests": route.rate_limit.requests,
                "perSeconds": route.rate_limit.per_seconds,
                "per": route.rate_limit.per,
            }
        if route.full_name == HEALTH_RPC:
            operation["responses"]["503"] = {
                "description": "At least one service is not SERVING; the body lists each.",
                "content": {
                    "application/json": {"schema": self.schemas.message(route.method.output_type)}
                },
            }
        return operation

    def build(self, title: str, version: str, server_url: str) -> dict[str, Any]:
        paths: dict[str, Any] = {}
        tags: dict[str, str] = {}
        for route in self.routes:
            template = route.path.openapi_path
            for variable in route.path.variables:
                template = template.replace(
                    "{" + variable.field_path + "}",
                    "{" + _json_path(route.method.input_type, variable.field_path) + "}",
                )
            paths.setdefault(template, {})[route.verb.lower()] = self.operation(route)
            tags.setdefault(route.service.name, self.comments.get(route.service.full_name, ""))
        paths[OPENAPI_PATH] = {
            "get": {
                "operationId": "GetOpenApiDocument",
                "tags": ["GatewayService"],
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI 3.1 document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        }
        paths[UPLOAD_OPENAPI_PATH] = {"put": upload_operation()}
        reason_notes = {
            reason: self.comments.get(f"identity.common.v1.ErrorReason.ERROR_REASON_{reason}", "")
            for reason in known_reasons()
        }
        self.schemas.components[ERROR_SCHEMA] = error_schema(reason_notes)
        self.schemas.components[TOKEN_ERROR_SCHEMA] = token_error_schema()
        return shorten(self._document(title, version, server_url, paths, tags))

    def _document(
        self,
        title: str,
        version: str,
        server_url: str,
        paths: dict[str, Any],
        tags: dict[str, str],
    ) -> dict[str, Any]:
        return {
            "openapi": "3.1.0",
            "info": {
                "title": title,
                "version": version,
                "description": (
                    "KYC onboarding and step-up authentication for the Indonesian KTP. "
                    "Authenticate with an API key: `Authorization: Bearer idk_...` "
                    "(or `X-Api-Key`). "
                    "Every error has the `Error` shape (the OAuth token route's: `TokenError`, "
                    "RFC 6749 section 5.2); `X-Request-Id` is echoed on every response."
                ),
            },
            "servers": [{"url": server_url}],
            "tags": [
                {"name": name, "description": text} if text else {"name": name}
                for name, text in sorted(tags.items())
            ],
            "security": API_KEY_SECURITY,
            "paths": dict(sorted(paths.items())),
            "components": {
                "schemas": dict(sorted(self.schemas.components.items())),
                "securitySchemes": {
                    "ApiKeyBearer": {
                        "type": "http",
                        "scheme": "bearer",
                        "bearerFormat": "idk_...",
                        "description": "A partner API key.",
                    },
                    "ApiKeyHeader": {
                        "type": "apiKey",
                        "in": "header",
                        "name": "X-Api-Key",
                        "description": "The same key, for clients that cannot set Authorization.",
                    },
                    SDK_SESSION_SCHEME: {
                        "type": "http",
                        "scheme": "bearer",
                        "bearerFormat": "sdk_...",
                        "description": (
                            "A browser's short-lived SDK session token (POST "
                            "/api/identity/sdk-sessions), for one customer: only the "
                            "operations that list it accept it."
                        ),
                    },
                },
                "parameters": {
                    "RequestId": {
                        "name": "X-Request-Id",
                        "in": "header",
                        "required": False,
                        "description": (
                            "Your id for this request (1-128 of A-Z a-z 0-9 . _ : -); "
                            "one is generated otherwise. Echoed in the response."
                        ),
                        "schema": {
                            "type": "string",
                            "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
                        },
                    }
                },
                "headers": {
                    "RetryAfter": {
                        "description": "Seconds to wait before retrying.",
                        "schema": {"type": "integer", "minimum": 1},
                    },
                    "RequestId": {
                        "description": "The request id (yours, or the one generated).",
                        "schema": {"type": "string"},
                    },
                    "WWWAuthenticate": {
                        "description": (
                            "The challenge of every 401 (RFC 7235): `Bearer "
                            'realm="identity-platform"` (RFC 6750; `error="invalid_token"` '
                            "for a refused key or token), `Basic` on the OAuth token route, "
                            "`Cookie` for the console's session (docs/gateway.md)."
                        ),
                        "required": True,
                        "schema": {"type": "string"},
                    },
                },
            },
        }


UPLOAD_OPENAPI_PATH = "/api/face-match/uploads/{submissionId}/{image}"
_UPLOAD_TYPES = ("image/jpeg", "image/png", "image/webp")


def upload_operation() -> dict[str, Any]:
    """The presigned upload (gateway/app.py `_upload`): the URL a submission's
    `uploads[].url` names, served by the gateway for face-match's local bucket."""
    put_object = submissions_pb2.DESCRIPTOR.services_by_name["SubmissionService"].methods_by_name[
        "PutObject"
    ]

    def parameter(name: str, where: str, schema: dict[str, Any], text: str) -> dict[str, Any]:
        return {"name": name, "in": where, "required": True, "description": text, "schema": schema}

    return {
        "operationId": "UploadSubmissionImage",
        "tags": ["SubmissionService"],
        "summary": "Upload one image of a submission to its presigned URL",
        "description": (
            "Send the image to the `url` of one of the submission's `uploads` "
            "(`POST /api/face-match/submissions`) exactly as given, with every header of "
            "that upload's `headers`. No API key or token: the URL's signature is the "
            "credential (it binds the submission, the image, the expiry and the size "
            "limit). Checked before a byte of the body is read; the body is at most the "
            "upload's `maxBytes`. Uploading the same image again replaces it, until the "
            "submission is confirmed. Any other method is 405 METHOD_NOT_ALLOWED."
        ),
        "security": [],
        "parameters": [
            parameter(
                "submissionId",
                "path",
                {"type": "string", "pattern": "^fms_[A-Za-z0-9]{8,40}$", "maxLength": 44},
                "The submission's id, as in the URL.",
            ),
            parameter(
                "image",
                "path",
                {
                    "type": "string",
                    "enum": ["selfie", "reference"],
                    "pattern": "^(selfie|reference)$",
                    "maxLength": 9,
                },
                "Which image.",
            ),
            parameter(
                "expires",
                "query",
                {"type": "integer"},
                "When the URL expires (Unix seconds), as in the URL.",
            ),
            parameter(
                "signature",
                "query",
                {"type": "string", "pattern": "^[0-9A-Fa-f]{64}$", "maxLength": 64},
                "The URL's signature (HMAC-SHA256, hex), as in the URL.",
            ),
            {"$ref": "#/components/parameters/RequestId"},
        ],
        "requestBody": {
            "required": True,
            "description": "The image's bytes (at most the upload's `maxBytes`).",
            "content": {
                media: {"schema": {"type": "string", "contentMediaType": media}}
                for media in _UPLOAD_TYPES
            },
        },
        "responses": {
            "200": {
                "description": "Stored: the number of bytes received.",
                "headers": {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}},
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["size"],
                            "properties": {"size": {"type": "integer", "minimum": 1}},
                            "additionalProperties": False,
                        }
                    }
                },
            },
            **responses_of(upload_errors(put_object)),
        },
    }


def build_document(
    routes: Iterable[Route],
    *,
    title: str = "Identity Platform API",
    version: str = "v1",
    server_url: str = "/",
) -> dict[str, Any]:
    return _Builder(routes).build(title, version, server_url)
