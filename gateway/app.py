"""The gateway's ASGI application: `create_app(settings)`.

Every request goes through one pipeline:

1. request id (a sane `X-Request-Id`, else a new one), a server span that
   continues the caller's W3C trace, the deadline (`default_deadline_seconds`);
2. route match from the contracts (404 ROUTE_NOT_FOUND, 405 METHOD_NOT_ALLOWED);
   `/console` is the analyst UI's static files instead (gateway.console_site);
3. API key -> organisation and scopes (401 / 403), unless the route is
   anonymous; without a key, an analyst's console session cookie, with its
   CSRF token on state-changing requests (gateway.console);
4. body: Content-Type and Content-Encoding (415), size by Content-Length and
   while streaming (413), read within the body-read timeout (408),
   JSON -> request message with path and query parameters (400), checked by
   the contract's one validation layer (400 INVALID_FIELD naming the field
   in lowerCamel, as the OpenAPI document spells it);
5. rate limit (429);
6. the gRPC call on a channel from `ClientFactory` (retries only for
   idempotent methods, circuit breaker, size limits), carrying
   `x-request-id`, `traceparent`, the remaining deadline and a caller token
   the gateway signs for the key's organisation, actor and scopes
   (`identity_runtime.meshauth`); or a handler of the gateway's own
   (`identity.gateway.v1`);
   and, on a POST, the client's `Idempotency-Key` header as the
   `idempotency-key` metadata (kyc-tier keeps the first response per
   organisation and key for 24 h: services/kyc_tier/idempotency.py);
7. the response as proto3 JSON (or raw, for `google.api.HttpBody`), or the
   error as the JSON error body with the mapped HTTP status.

Nothing a client sends reaches the services except the request message:
client headers such as `Authorization` or `x-identity-org` are never forwarded
(`Idempotency-Key` alone, checked, as metadata).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from opentelemetry import trace
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway import (
    bodies,
    client_address,
    console,
    console_site,
    errors,
    oauth,
    sdk_access,
    sdk_demo,
    streaming,
    transcoding,
)
from gateway.auth import (
    ApiKeyCache,
    EpochSource,
    Principal,
    Resolver,
    authorize,
    bearer_access_token,
    passed_on_challenge,
    presented_key,
    token_refused,
)
from gateway.credential_throttle import CredentialThrottle
from gateway.health import HealthChecker
from gateway.idempotency import IDEMPOTENCY_HEADER, IDEMPOTENCY_METADATA, idempotency_key
from gateway.openapi import HEALTH_RPC, OPENAPI_PATH, UPLOAD_OPENAPI_PATH, build_document
from gateway.ratelimit import RateLimiter
from gateway.routing import GATEWAY_PACKAGE, Route, RouteError, RouteTable, build_routes
from gateway.settings import GatewaySettings
from identity_platform_api.common.v1 import options_pb2
from identity_platform_api.face_match.v1 import oauth_pb2, submissions_pb2
from identity_platform_api.gateway.v1 import gateway_pb2
from identity_platform_api.kyc_tier.v1 import api_keys_pb2, console_auth_pb2, sdk_sessions_pb2
from identity_runtime import console_roles, mesh, meshauth, meshtls, metrics, tracing
from identity_runtime import context as call_context
from identity_runtime.clients import ClientFactory, ClientOptions
from identity_runtime.errors import DeadlineExceeded, DomainError, Internal
from identity_runtime.logs import get_logger
from identity_runtime.request_ids import request_id_or_new

log = get_logger("identity.gateway")
# The response message type of one call.
R = TypeVar("R", bound=Message)
access_log = get_logger("identity.gateway.access")

_AUTHENTICATE_RPC = "/identity.kyc_tier.v1.ApiKeyService/AuthenticateApiKey"
_JWKS_RPC = "/identity.face_match.v1.OAuthService/GetJwks"
_AUTHENTICATE_CLIENT_RPC = "/identity.face_match.v1.OAuthService/AuthenticateClient"
_CLIENT_REVOCATION_EPOCH_RPC = "/identity.face_match.v1.OAuthService/GetClientRevocationEpoch"
_PUT_OBJECT_RPC = "/identity.face_match.v1.SubmissionService/PutObject"
_AUTHORIZE_UPLOAD_RPC = "/identity.face_match.v1.SubmissionService/AuthorizeUpload"
# Face Match's presigned uploads (services/face_match/bucket.py): not a
# contract route, since the body is the raw image.
UPLOAD_PREFIX = "/api/face-match/uploads/"
_REVOCATION_EPOCH_RPC = "/identity.kyc_tier.v1.ApiKeyService/GetApiKeyRevocationEpoch"
_SDK_SESSION_RPC = "/identity.kyc_tier.v1.SdkSessionService/AuthenticateSdkSession"
_SDK_ORIGIN_RPC = "/identity.kyc_tier.v1.SdkSessionService/CheckSdkOrigin"
_SCOPE_NAMES = {options_pb2.SCOPE_PUBLIC: "public", options_pb2.SCOPE_INTERNAL: "internal"}
_NO_STORE = {"Cache-Control": "no-store"}
# Content-Length as RFC 9110 writes it: ASCII digits (str.isdigit also takes
# "²", which int() refuses, and other scripts' digits, which it reads).
_DIGITS = re.compile(r"[0-9]+")
# A presigned upload URL as face-match writes it: the expiry in Unix seconds
# (an int64 field of the request: a value out of its range was a 500), the
# signature in hex (HMAC-SHA256).
_UPLOAD_EXPIRES = re.compile(r"-?[0-9]{1,19}")
_UPLOAD_SIGNATURE = re.compile(r"[0-9A-Fa-f]{64}")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# What the access log calls each kind of credential's id (gateway.auth.Principal).
_CREDENTIAL_FIELDS = {
    "api_key": "api_key_id",
    "oauth_client": "client_id",
    sdk_access.KIND: "sdk_session_id",
}

LocalHandler = Callable[[Message], Awaitable[tuple[Message, int]]]


def request_id_from(header: str | None) -> str:
    """The caller's request id when it is sane, else a new one: the rule every
    service applies to a direct caller's id too (identity_runtime.request_ids)."""
    return request_id_or_new(header)


def declared_length(headers: Mapping[str, str], limit: int) -> int | None:
    """A request's Content-Length, None when it declares none; 400 when it is
    not a number or comes with a Transfer-Encoding, 413 when it is over
    `limit`: before a byte of the body is read."""
    header = headers.get("content-length")
    if header is None:
        return None
    if "transfer-encoding" in headers:
        # The server frames such a body by Transfer-Encoding; a proxy in front
        # may frame it by Content-Length: two readings of one request
        # (smuggling). RFC 9112 6.3 lets a server refuse it.
        raise errors.malformed("Content-Length and Transfer-Encoding together: send one")
    digits = header.strip()
    if not _DIGITS.fullmatch(digits):
        raise errors.malformed("Content-Length is not a number")
    # Longer than the limit is over it, unconverted (Python refuses to
    # convert 4,300 digits or more).
    digits = digits.lstrip("0") or "0"
    if len(digits) > len(str(limit)) or int(digits) > limit:
        raise errors.payload_too_large(limit)
    return int(digits)


def upload_url_invalid() -> errors.GatewayError:
    return errors.GatewayError(
        "PERMISSION_DENIED", "UPLOAD_URL_INVALID", "the upload URL's signature does not verify"
    )


def upload_credentials(query: Mapping[str, list[str]]) -> tuple[int, str]:
    """(expires, signature) of a presigned upload URL's query; 403
    UPLOAD_URL_INVALID when they cannot be what face-match signed (no such
    signature verifies), as face-match answers for a wrong signature."""
    expires = query.get("expires", [""])[0]
    signature = query.get("signature", [""])[0]
    if not (_UPLOAD_EXPIRES.fullmatch(expires) and _UPLOAD_SIGNATURE.fullmatch(signature)):
        raise upload_url_invalid()
    if not _INT64_MIN <= int(expires) <= _INT64_MAX:
        raise upload_url_invalid()
    return int(expires), signature


def _is_json(content_type: str) -> bool:
    media_type, _, params = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return False
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


def _is_token_route(route: Route | None) -> bool:
    return route is not None and route.full_name == oauth.TOKEN_RPC


def _no_store(route: Route | None) -> Mapping[str, str]:
    """The token route's answers also carry `Pragma: no-cache` (RFC 6749 5.1, 5.2)."""
    return oauth.NO_STORE if _is_token_route(route) else _NO_STORE


def _challenge(error: DomainError, outcome: _Outcome) -> Mapping[str, str]:
    """The WWW-Authenticate of a 401 that has none yet (RFC 7235 section 3.1:
    every 401 carries one): a service's UNAUTHENTICATED passed on. The token
    route's is HTTP Basic (invalid_client), the console's sign-in and session
    routes' the cookie scheme's, every other route's the Bearer one."""
    if errors.http_status(error) != 401 or "WWW-Authenticate" in getattr(error, "headers", {}):
        return {}
    route, principal = outcome.route, outcome.principal
    if _is_token_route(route):
        return oauth.CLIENT_CHALLENGE
    if (principal is not None and principal.console_user_id) or (
        route is not None and route.full_name in console.SIGN_IN_RPCS
    ):
        return console.challenge()
    return passed_on_challenge(error.reason)


def _principal_cache(
    settings: GatewaySettings, resolver: Resolver, revocations: EpochSource
) -> ApiKeyCache:
    """The principals `resolver` answers, remembered under the gateway's auth-cache
    settings and dropped when `revocations`' epoch moves."""
    return ApiKeyCache(
        resolver,
        settings.auth_cache_seconds,
        settings.auth_cache_max_entries,
        revocations=revocations,
        revocation_check_seconds=settings.auth_revocation_check_seconds,
    )


@dataclass
class _Outcome:
    """What the access log and the span record about one request."""

    route: Route | None = None
    # The template of a route the gateway answers itself (the presigned
    # upload, the OpenAPI document): logs and metrics name it, not the path.
    own_route: str = ""
    principal: Principal | None = None
    status: int = 0
    grpc_status: str = "OK"
    reason: str = ""
    bytes_in: int = 0
    bytes_out: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    # The client's address, when the request presents a credential (an API
    # key, a token, an OAuth client's secret): a refusal counts against it
    # (gateway.credential_throttle).
    credential_from: str | None = None

    @property
    def template(self) -> str:
        return self.route.path.template if self.route else self.own_route


class Gateway:
    """Everything one gateway instance holds; `asgi` is its Starlette app."""

    def __init__(self, settings: GatewaySettings):
        self.settings = settings
        self.routes = RouteTable(build_routes(), mesh.BY_PACKAGE)
        tls = meshtls.mesh_tls_from(settings, "GATEWAY")
        self.clients = ClientFactory(
            settings.service_addresses(),
            ClientOptions(
                max_message_bytes=settings.max_message_bytes,
                default_timeout_seconds=settings.default_deadline_seconds,
                tls=tls,
            ),
            signer=meshauth.signer_from(
                "gateway",
                settings.mesh_signing_key_file,
                settings.mesh_signing_key,
                "GATEWAY_MESH_SIGNING_KEY",
                mesh_identity=False,
            ),
        )
        self.api_keys = _principal_cache(settings, self._resolve_key, self._revocation_epoch)
        # OAuth clients are remembered and dropped on revocation like API keys,
        # under face-match's client revocation epoch.
        self.oauth_clients = _principal_cache(
            settings, self._resolve_client, self._client_revocation_epoch
        )
        self.access_tokens = oauth.AccessTokens(
            self._fetch_jwks,
            settings.oauth_issuer,
            settings.oauth_jwks_cache_seconds,
            active_client=self._active_client,
        )
        self.sdk_origins = sdk_access.KnownOrigins(self._check_sdk_origin)
        self.sdk_demo = sdk_demo.SdkDemo(self) if settings.sdk_demo else None
        self.limiter = RateLimiter(settings.rate_limit_storage, settings.rate_limit_key_prefix)
        self._trusted_proxies = client_address.networks(settings.trusted_proxies)
        self.credentials = CredentialThrottle(self.limiter, settings.failed_credentials_per_5_min)
        self.health = HealthChecker(
            settings.service_addresses(), settings.health_timeout_seconds, tls
        )
        self.local_handlers: dict[str, LocalHandler] = {HEALTH_RPC: self._get_health}
        self._callables: dict[str, grpc.aio.UnaryUnaryMultiCallable[Any, Any]] = {}
        self._openapi: bytes | None = None
        self.metrics_server: metrics.MetricsServer | None = None
        for route in self.routes:
            if route.package == GATEWAY_PACKAGE and route.full_name not in self.local_handlers:
                raise RouteError(
                    f"{route.full_name} is routed to the gateway, which has no handler for it"
                )
            if (
                route.rate_limit is not None
                and route.scope == "anonymous"
                and route.rate_limit.per != "ip"
            ):
                raise RouteError(
                    f"{route.full_name}: a rate limit needs a caller (the route is anonymous)"
                )
        self.asgi = Starlette(lifespan=self._lifespan)
        # Every request reaches the endpoint, whatever its path (Starlette's
        # own path patterns stop at a newline and would answer a text/plain
        # 404), and Starlette applies no method filter of its own: 404s and
        # 405s come from the contract routes, as JSON errors.
        self.asgi.router.default = _Endpoint(self)
        self.asgi.state.gateway = self

    # --- lifecycle -----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        try:
            await self.limiter.check_store()
        except Exception as exc:  # noqa: BLE001 - reported, the gateway refuses limited routes meanwhile
            log.error("rate-limit store unreachable at start-up", error=str(exc))
        self.metrics_server = metrics.serve(self.settings.host, self.settings.metrics_port)
        try:
            yield
        finally:
            if self.metrics_server is not None:
                self.metrics_server.stop()
                self.metrics_server = None
            await self.close()

    async def close(self) -> None:
        self._callables.clear()
        await self.clients.close()
        await self.health.close()
        await self.limiter.close()

    # --- the pipeline ----------------------------------------------------------

    async def endpoint(self, request: Request) -> Response:
        started = time.perf_counter()
        request_id = request_id_from(request.headers.get("x-request-id"))
        deadline = time.monotonic() + self.settings.default_deadline_seconds
        outcome = _Outcome()
        token = call_context.bind(
            call_context.CallContext(request_id=request_id, deadline=deadline)
        )
        span_name = f"HTTP {request.method}"
        try:
            with tracing.server_span(
                tracing.tracer("identity.gateway"),
                span_name,
                tracing.extract(request.headers.items()),
                {"http.request.method": request.method, "identity.request_id": request_id},
            ) as span:
                try:
                    response = await self._dispatch(request, request_id, deadline, outcome)
                except DomainError as exc:
                    if exc.code == "UNAUTHENTICATED" and outcome.credential_from is not None:
                        exc = await self.credentials.failed(outcome.credential_from) or exc
                    response = self._error_response(exc, request_id, outcome)
                except Exception:
                    log.exception(
                        "unhandled error in the gateway",
                        rpc=outcome.route.full_name if outcome.route else "",
                    )
                    error = Internal(
                        "internal error; quote the request id when reporting it", "INTERNAL"
                    )
                    response = self._error_response(error, request_id, outcome)
                outcome.status = response.status_code
                # A streamed body's size is not known here (0 in the access log).
                outcome.bytes_out = len(getattr(response, "body", b""))
                self._annotate_span(span, outcome)
            response.headers["X-Request-Id"] = request_id
            sdk_access.add_cors(request.headers.get("origin"), outcome.principal, response)
            return response
        finally:
            self._log_access(request, outcome, started)
            self._count(request, outcome, started)
            call_context.reset(token)

    async def _dispatch(
        self, request: Request, request_id: str, deadline: float, outcome: _Outcome
    ) -> Response:
        raw_path = (request.scope.get("raw_path") or request.scope["path"].encode()).split(b"?", 1)[
            0
        ]
        path = raw_path.decode("latin-1")
        if console_site.is_console(path):
            return console_site.serve(request.method, path)
        if path == OPENAPI_PATH:
            outcome.own_route = OPENAPI_PATH
            if request.method != "GET":
                raise errors.method_not_allowed(["GET"])
            return Response(self.openapi_bytes(), 200, media_type="application/json")
        if path.startswith(UPLOAD_PREFIX):
            outcome.own_route = UPLOAD_OPENAPI_PATH
            return await self._upload(request, path[len(UPLOAD_PREFIX) :], outcome)
        if self.sdk_demo is not None and sdk_demo.is_demo(path):
            return await self.sdk_demo.serve(request, path)
        if sdk_access.is_preflight(request.method, request.headers):
            outcome.route, _ = self.routes.match(
                request.headers["access-control-request-method"].strip().upper(), path
            )
            return await sdk_access.preflight(outcome.route, request.headers, self.sdk_origins)

        route, path_params = self.routes.match(request.method, path)
        outcome.route = route
        # An anonymous route takes a key when one is presented (the health
        # route shows its details to internal keys only).
        # (Not the OAuth token route: its Authorization is the client's Basic credentials.)
        presents_key = (
            "authorization" in request.headers or "x-api-key" in request.headers
        ) and route.full_name != oauth.TOKEN_RPC
        # Without a key, an analyst's console session cookie (gateway.console).
        by_session = (
            not presents_key and route.scope != "anonymous" and bool(console.session_token(request))
        )
        if presents_key or route.full_name == oauth.TOKEN_RPC:
            outcome.credential_from = self._client(request)
        if route.scope != "anonymous" or presents_key:
            principal = await (
                self._session_principal(request) if by_session else self._authenticate(request)
            )
            outcome.principal = principal
            # Before the scope: an SDK token outside its routes is refused as
            # such, not invited (SCOPE_INSUFFICIENT's challenge) to get a scope.
            sdk_access.check_route(
                route,
                principal,
                request.headers.get("origin"),
                request.headers.get("host") if self.sdk_demo is not None else None,
            )
            authorize(route.scope, principal)
            if principal.console_user_id:
                # kyc-tier checks its own RPCs again from its record of the user.
                console_roles.check(principal.console_roles, route.console_role)
            call_context.bind(
                call_context.CallContext(
                    request_id=request_id,
                    org_id=principal.org_id,
                    actor=principal.actor,
                    scopes=tuple(sorted(principal.scopes)),
                    deadline=deadline,
                    method=route.full_name,
                )
            )

        body = await self._read_body(request, route, outcome)
        message = transcoding.build_request(
            route,
            path_params,
            transcoding.parse_query(request.scope.get("query_string", b"")),
            body,
        )
        transcoding.validate(message)
        sdk_access.check_customer(outcome.principal, message)
        console.prepare(route.full_name, request, message)
        if route.rate_limit is not None and (
            outcome.principal is not None or route.rate_limit.per == "ip"
        ):
            await self.limiter.check(
                route,
                outcome.principal.org_id if outcome.principal else "",
                message,
                self._client(request),
            )

        if route.streams:
            # A stream runs past the request deadline, up to its own.
            bound = call_context.current()
            if bound is not None:
                long = time.monotonic() + self.settings.stream_deadline_seconds
                call_context.bind(dataclasses.replace(bound, deadline=long))
            return await streaming.respond(
                self.clients.channel(route.package),
                route,
                message,
                self.settings.stream_deadline_seconds,
                _NO_STORE,
            )
        if route.package == GATEWAY_PACKAGE:
            reply, status = await self.local_handlers[route.full_name](message)
        else:
            key = idempotency_key(request.headers.get(IDEMPOTENCY_HEADER), route.verb)
            reply, status = await self._call(route, message, key), 200
        cookies = console.finish(route.full_name, request, reply)
        content, media_type = transcoding.render_response(route, reply)
        response = Response(content, status, media_type=media_type, headers=_no_store(route))
        console.set_cookies(response, cookies)
        return response

    async def _received(self, request: Request, limit: int, outcome: _Outcome) -> bytes:
        """The body (gateway.bodies: 415 for a Content-Encoding, 413, 408)."""
        received = await bodies.read_body(request, limit, self.settings.body_read_timeout_seconds)
        outcome.bytes_in = len(received)
        return received

    async def _read_body(self, request: Request, route: Route, outcome: _Outcome) -> bytes | None:
        limit = self.settings.max_body_bytes
        declared = declared_length(request.headers, limit)
        if declared == 0:
            return None
        if (
            declared is None
            and "chunked" not in request.headers.get("transfer-encoding", "").lower()
        ):
            return None
        content_type = request.headers.get("content-type")
        # The OAuth token route also takes RFC 6749's form-encoded request.
        token_route = _is_token_route(route)
        form = token_route and oauth.is_form(content_type or "")
        expected = f"{oauth.FORM} or application/json" if token_route else "application/json"
        if route.body and content_type is not None and not _is_json(content_type) and not form:
            raise errors.unsupported_media_type(expected)
        received = await self._received(request, limit, outcome)
        if received and route.body and content_type is None:
            raise errors.unsupported_media_type(expected)
        if form:
            return oauth.token_request_json(received, request.headers.get("authorization"))
        return received or None

    def _client(self, request: Request) -> str:
        """The client's address (behind trusted proxies, the forwarded one)."""
        return client_address.client_address(
            request.client.host if request.client else None,
            request.headers.getlist("x-forwarded-for"),
            self._trusted_proxies,
        )

    async def _authenticate(self, request: Request) -> Principal:
        sdk_token = sdk_access.presented_token(
            request.headers.getlist("authorization"), request.headers.getlist("x-api-key")
        )
        if sdk_token is not None:
            return await self._sdk_session(sdk_token)
        access_token = bearer_access_token(
            request.headers.getlist("authorization"), request.headers.getlist("x-api-key")
        )
        if access_token is not None:
            try:
                claims = await self.access_tokens.verify(access_token)
            except DomainError as error:
                if error.code != "UNAUTHENTICATED":
                    raise
                raise token_refused(error) from None
            return Principal(
                org_id=claims.org_id,
                credential_id=claims.client_id,
                scopes=claims.scopes,
                kind="oauth_client",
            )
        key = presented_key(
            request.headers,
            request.headers.getlist("authorization"),
            request.headers.getlist("x-api-key"),
        )
        return await self.api_keys.authenticate(key)

    async def _sdk_session(self, token: str) -> Principal:
        try:
            reply = await self._as_gateway(
                _SDK_SESSION_RPC,
                sdk_sessions_pb2.AuthenticateSdkSessionRequest(token=token),
                sdk_sessions_pb2.AuthenticateSdkSessionResponse,
            )
            # A session an OAuth client minted ends with the client (face-match's,
            # remembered and dropped on revocation as for its access tokens).
            client_id = reply.minted_by_oauth_client_id
            if client_id and await self._active_client(client_id) != reply.org_id:
                raise sdk_access.invalid_token()
        except DomainError as error:
            if error.code != "UNAUTHENTICATED":
                raise
            raise sdk_access.invalid_token() from None
        return sdk_access.principal(
            reply.org_id, reply.session_id, reply.customer_id, list(reply.origins)
        )

    async def _check_sdk_origin(self, origin: str) -> bool:
        reply = await self._as_gateway(
            _SDK_ORIGIN_RPC,
            sdk_sessions_pb2.CheckSdkOriginRequest(origin=origin),
            sdk_sessions_pb2.CheckSdkOriginResponse,
        )
        return reply.allowed

    async def _session_principal(self, request: Request) -> Principal:
        try:
            reply = await self._as_gateway(
                console.AUTHENTICATE_SESSION_RPC,
                console.session_request(request),
                console_auth_pb2.AuthenticateSessionResponse,
            )
        except DomainError as error:
            if error.code != "UNAUTHENTICATED":
                raise
            raise console.session_refused(error) from None
        return Principal(
            org_id=reply.org_id,
            credential_id="",
            scopes=frozenset({"internal"}),
            console_user_id=reply.user_id,
            console_roles=frozenset(reply.roles),
        )

    async def _as_gateway(
        self, rpc: str, message: Message, response_class: type[R], package: str = "kyc_tier"
    ) -> R:
        """A call the gateway makes as itself (a mesh service), for no
        organisation yet: resolving a key or a console session, the revocation
        epoch (kyc-tier); Face Match's token keys, whether an OAuth client is
        active, its revocation epoch, and uploads (face-match)."""
        outer = call_context.current()
        token = call_context.bind(
            call_context.CallContext(
                request_id=outer.request_id if outer else call_context.new_request_id(),
                actor="service:gateway",
                scopes=(meshauth.MESH_SCOPE,),
                deadline=outer.deadline if outer else None,
            )
        )
        try:
            return await self._invoke(package, rpc, message, response_class)
        finally:
            call_context.reset(token)

    async def _resolve_key(self, key: str) -> Principal:
        reply = await self._as_gateway(
            _AUTHENTICATE_RPC,
            api_keys_pb2.AuthenticateApiKeyRequest(secret=key),
            api_keys_pb2.AuthenticateApiKeyResponse,
        )
        scopes = frozenset(_SCOPE_NAMES[s] for s in reply.scopes if s in _SCOPE_NAMES)
        return Principal(org_id=reply.org_id, credential_id=reply.api_key_id, scopes=scopes)

    async def _revocation_epoch(self) -> int:
        reply = await self._as_gateway(
            _REVOCATION_EPOCH_RPC,
            api_keys_pb2.GetApiKeyRevocationEpochRequest(),
            api_keys_pb2.GetApiKeyRevocationEpochResponse,
        )
        return reply.epoch

    async def _resolve_client(self, client_id: str) -> Principal:
        reply = await self._as_gateway(
            _AUTHENTICATE_CLIENT_RPC,
            oauth_pb2.AuthenticateClientRequest(client_id=client_id),
            oauth_pb2.AuthenticateClientResponse,
            "face_match",
        )
        return Principal(
            org_id=reply.org_id,
            credential_id=reply.client_id,
            scopes=frozenset({"public"}),
            kind="oauth_client",
        )

    async def _active_client(self, client_id: str) -> str:
        return (await self.oauth_clients.authenticate(client_id)).org_id

    async def _client_revocation_epoch(self) -> int:
        reply = await self._as_gateway(
            _CLIENT_REVOCATION_EPOCH_RPC,
            oauth_pb2.GetClientRevocationEpochRequest(),
            oauth_pb2.GetClientRevocationEpochResponse,
            "face_match",
        )
        return reply.epoch

    async def _fetch_jwks(self) -> list[Mapping[str, str]]:
        reply = await self._as_gateway(
            _JWKS_RPC, oauth_pb2.GetJwksRequest(), oauth_pb2.GetJwksResponse, "face_match"
        )
        return [{"kty": k.kty, "crv": k.crv, "x": k.x, "kid": k.kid} for k in reply.keys]

    async def _upload(self, request: Request, key: str, outcome: _Outcome) -> Response:
        """A presigned PUT: the signature in the URL is the credential. Before
        a byte of the body is read: a URL that cannot be one face-match signed
        is 403 UPLOAD_URL_INVALID, a Content-Length over the gateway's body
        limit 413, and face-match's AuthorizeUpload checks the signature, the
        expiry, the content type, the declared size and that the submission
        still awaits uploads. Then the body (at most face-match's upload limit)
        goes to PutObject, which checks all of it again and stores it."""
        if request.method != "PUT":
            raise errors.method_not_allowed(["PUT"])
        expires, signature = upload_credentials(
            transcoding.parse_query(request.scope.get("query_string", b""))
        )
        limit = self.settings.max_body_bytes
        declared = declared_length(request.headers, limit)
        content_type = request.headers.get("content-type", "")
        authorized = await self._as_gateway(
            _AUTHORIZE_UPLOAD_RPC,
            submissions_pb2.AuthorizeUploadRequest(
                object_key=key,
                expires=expires,
                signature=signature,
                content_type=content_type,
                declared_size=declared,
            ),
            submissions_pb2.AuthorizeUploadResponse,
            "face_match",
        )
        if 0 < authorized.max_bytes < limit:
            limit = authorized.max_bytes
        received = await self._received(request, limit, outcome)
        reply = await self._as_gateway(
            _PUT_OBJECT_RPC,
            submissions_pb2.PutObjectRequest(
                object_key=key,
                expires=expires,
                signature=signature,
                content_type=content_type,
                data=received,
            ),
            submissions_pb2.PutObjectResponse,
            "face_match",
        )
        body = json.dumps({"size": reply.size}).encode()
        return Response(body, 200, media_type="application/json", headers=_NO_STORE)

    async def _call(self, route: Route, message: Message, idempotency: str = "") -> Message:
        metadata = ((IDEMPOTENCY_METADATA, idempotency),) if idempotency else ()
        try:
            return await self._invoke(
                route.package, route.rpc, message, route.response_class, metadata
            )
        except DomainError as error:
            # The service names its request's fields; the caller reads the API's names.
            transcoding.rename_error_field(error, route.method.input_type)
            raise

    async def _invoke(
        self,
        package: str,
        rpc: str,
        message: Message,
        response_class: type[R],
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> R:
        ctx = call_context.current()
        remaining = ctx.time_remaining() if ctx is not None else None
        timeout = self.settings.default_deadline_seconds if remaining is None else remaining
        if timeout <= 0:
            raise DeadlineExceeded("the request ran out of time before reaching its service")
        multicallable = self._callables.get(rpc)
        if multicallable is None:
            multicallable = self.clients.channel(package).unary_unary(
                rpc,
                request_serializer=type(message).SerializeToString,
                response_deserializer=response_class.FromString,
            )
            self._callables[rpc] = multicallable
        try:
            return await multicallable(message, timeout=timeout, metadata=metadata or None)
        except grpc.aio.AioRpcError as exc:
            raise errors.from_rpc_error(exc, mesh.BY_PACKAGE[package].name) from None

    async def _get_health(self, _request: Message) -> tuple[Message, int]:
        """Anonymous callers get the overall status only; the per-service
        details (addresses, errors, latencies) need an internal-scope key."""
        response, status = await self.health.check()
        caller = call_context.current()
        if caller is None or "internal" not in caller.scopes:
            return gateway_pb2.GetHealthResponse(status=response.status), status
        return response, status

    def openapi_bytes(self) -> bytes:
        if self._openapi is None:
            document = build_document(self.routes)
            self._openapi = json.dumps(document, ensure_ascii=False, indent=1).encode()
        return self._openapi

    # --- responses, logs, spans ------------------------------------------------

    def _error_response(self, error: DomainError, request_id: str, outcome: _Outcome) -> Response:
        outcome.grpc_status = error.code
        outcome.reason = error.reason
        status = errors.http_status(error)
        headers = {
            **_no_store(outcome.route),
            **_challenge(error, outcome),
            **errors.response_headers(error),
        }
        if _is_token_route(outcome.route):
            # RFC 6749 section 5.2's shape: OAuth client libraries read `error` as a string.
            body = oauth.token_error_body(error, status, request_id)
        else:
            body = errors.error_body(error, request_id)
        return Response(body, status, media_type="application/json", headers=headers)

    def _annotate_span(self, span: trace.Span, outcome: _Outcome) -> None:
        if outcome.route is not None:
            span.update_name(f"{outcome.route.verb} {outcome.route.path.template}")
            span.set_attribute("http.route", outcome.route.path.template)
            span.set_attribute("rpc.method", outcome.route.full_name)
        elif outcome.own_route:
            span.set_attribute("http.route", outcome.own_route)
        span.set_attribute("http.response.status_code", outcome.status)
        if outcome.principal is not None:
            span.set_attribute("identity.org_id", outcome.principal.org_id)
        if outcome.reason:
            span.set_attribute("identity.error_reason", outcome.reason)
        if outcome.status >= 500:
            span.set_status(trace.Status(trace.StatusCode.ERROR, outcome.reason))

    @staticmethod
    def _count(request: Request, outcome: _Outcome, started: float) -> None:
        # The route template (bounded by the contract), never the path.
        route = outcome.template or "unmatched"
        method = request.method if outcome.template else "other"
        metrics.HTTP_REQUESTS.labels(route, method, str(outcome.status), outcome.grpc_status).inc()
        metrics.HTTP_DURATION.labels(route, method).observe(time.perf_counter() - started)

    def _log_access(self, request: Request, outcome: _Outcome, started: float) -> None:
        if not self.settings.access_log:
            return
        # The route template, never the path or the query: both can carry
        # customer ids and, for search, a NIK or a name.
        fields: dict[str, Any] = {
            "method": request.method,
            "route": outcome.template,
            "rpc": outcome.route.full_name if outcome.route else "",
            "status": outcome.status,
            "grpc_status": outcome.grpc_status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "bytes_in": outcome.bytes_in,
            "bytes_out": outcome.bytes_out,
        }
        if outcome.reason:
            fields["reason"] = outcome.reason
        if outcome.principal is not None:
            principal = outcome.principal
            fields["org_id"] = principal.org_id
            # Each credential's id under a name that says what it is (an OAuth
            # client's id is no API key's), with the kind of principal.
            if principal.console_user_id:
                fields["principal_kind"] = "console_user"
                fields["console_user_id"] = principal.console_user_id
            else:
                fields["principal_kind"] = principal.kind
                field_name = _CREDENTIAL_FIELDS.get(principal.kind, "credential_id")
                fields[field_name] = principal.credential_id
        if outcome.status >= 500:
            access_log.error("request", **fields)
        elif outcome.status >= 400:
            access_log.warning("request", **fields)
        else:
            access_log.info("request", **fields)


class _Endpoint:
    def __init__(self, gateway: Gateway):
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.gateway.endpoint(Request(scope, receive))
        await response(scope, receive, send)


def create_app(settings: GatewaySettings) -> Starlette:
    """The gateway as a Starlette ASGI app; `app.state.gateway` is the Gateway."""
    tracing.configure("gateway", settings.otlp_endpoint)
    return Gateway(settings).asgi
