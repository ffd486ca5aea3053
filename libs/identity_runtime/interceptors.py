"""Server interceptors shared by every service.

Each interceptor wraps the RPC behaviour in an async context manager, which
works the same for unary and streaming RPCs. `server_stages()` returns
them in order, outermost first:

0. CallerAuthInterceptor   (identity_runtime.authz) verifies the caller's
                           token or API key and the RPC's scope; refuses
                           UNAUTHENTICATED / PERMISSION_DENIED.
1. CallContextInterceptor  request id (`x-request-id` when
                           identity_runtime.request_ids takes it, else new), tenant,
                           actor and scopes (from the verified caller only)
                           and the deadline (the caller's, or the service
                           default) bound for the call and for downstream calls.
2. TracingInterceptor      a server span continuing the caller's trace.
3. ErrorInterceptor        DomainError -> google.rpc.Status with ErrorInfo;
                           anything unexpected -> INTERNAL (logged with its
                           traceback, never sent to the caller).
4. AccessLogInterceptor    one structured log line per call: rpc, status,
                           reason, duration, request id, tenant. No payloads.
                           Counts the call and its duration in the RPC
                           metrics (identity_runtime.metrics), by service,
                           RPC and code.
                           Inside the error interceptor, so the line is
                           written before the status reaches the caller.
5. DeadlineInterceptor     enforces the deadline with a clean
                           DEADLINE_EXCEEDED.
6. ValidationInterceptor   every request message through the contract's one
                           validation layer (`identity_runtime.validation`):
                           INVALID_ARGUMENT / INVALID_FIELD naming the field
                           path before the servicer runs.
7. RateLimitInterceptor    the RPC's declared `rate_limit`, for every caller
                           (`identity_runtime.ratelimit`): RESOURCE_EXHAUSTED /
                           RATE_LIMITED.

The server installs them as one grpc.aio interceptor (`ChainInterceptor`):
each method's handler is wrapped by the stages once and kept, so a call does
not await one interceptor per stage nor rebuild its handler. Around a unary
call, stages 0-6 run as one coroutine (`_fused_unary`): the same steps in the
same order as their scopes nested, without a generator-based context manager
per stage. Streaming calls and a chain of other stages use the scopes.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NamedTuple, Protocol, TypeAlias, cast

import grpc
from opentelemetry import trace

from identity_runtime import context as call_context
from identity_runtime import metrics, tracing
from identity_runtime.errors import DeadlineExceeded, DomainError, Internal, Unimplemented
from identity_runtime.logs import get_logger, write_hot_line
from identity_runtime.ratelimit import RateLimitInterceptor, RateLimits
from identity_runtime.request_ids import request_id_or_new
from identity_runtime.status import KNOWN_REASONS, to_grpc_status
from identity_runtime.validation import lenient, validate

log = get_logger("identity.rpc")

# Infrastructure RPCs that are neither logged per call nor traced.
_QUIET_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

Scope = Callable[[str, grpc.aio.ServicerContext], contextlib.AbstractAsyncContextManager[Any]]
# grpc.aio calls a handler's behaviour as a coroutine (or an async generator)
# with an aio context; typeshed types RpcMethodHandler for the threaded server.
# Interceptors see every RPC, so requests and responses are Any here.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # generic in typeshed only
_AsyncUnary = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
_AsyncStream = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]


def _wrap_handler(handler: Handler, method: str, scope: Scope) -> Handler:
    """The same handler with its behaviour run inside `scope(method, context)`."""

    def returning(inner: _AsyncUnary) -> _AsyncUnary:
        async def behaviour(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
            async with scope(method, ctx):
                return await inner(request, ctx)

        return behaviour

    def streaming(inner: _AsyncStream) -> _AsyncStream:
        async def behaviour(request: Any, ctx: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async with scope(method, ctx):
                async for item in inner(request, ctx):
                    yield item

        return behaviour

    # The request side (one message or an iterator) passes through untouched;
    # the response side decides how the scope wraps the behaviour.
    return _rebuilt(handler, by_response=(returning, streaming))


_Wrap = Callable[[Any], Any]
_HANDLER_KINDS: tuple[tuple[str, Callable[..., Handler]], ...] = (
    ("unary_unary", grpc.unary_unary_rpc_method_handler),
    ("unary_stream", grpc.unary_stream_rpc_method_handler),
    ("stream_unary", grpc.stream_unary_rpc_method_handler),
    ("stream_stream", grpc.stream_stream_rpc_method_handler),
)


def _rebuilt(
    handler: Handler,
    *,
    by_response: tuple[_Wrap, _Wrap] | None = None,
    by_request: tuple[_Wrap, _Wrap] | None = None,
) -> Handler:
    """`handler` with its behaviour wrapped: (one message, a stream) picks the
    wrapper by the RPC's response side (`by_response`) or request side
    (`by_request`)."""
    for kind, rebuild in _HANDLER_KINDS:
        inner = getattr(handler, kind)
        if inner is None:
            continue
        request_side, response_side = kind.split("_")
        side = response_side if by_response is not None else request_side
        single, stream = by_response or by_request or (lambda f: f, lambda f: f)
        wrap = stream if side == "stream" else single
        return rebuild(wrap(inner), handler.request_deserializer, handler.response_serializer)
    return handler


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """Base: looks the method's handler up and serves `wrap(handler, method)`
    in its place; subclasses implement `wrap`."""

    # True: health and reflection calls run unwrapped (not traced, not logged, not validated).
    skips_infrastructure = False

    def wrap(self, handler: Handler, method: str) -> Handler:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return self.served(handler, handler_call_details.method)

    def served(self, handler: Handler, method: str) -> Handler:
        """What grpc.aio serves for `method` in place of `handler`."""
        if self.skips_infrastructure and method.startswith(_QUIET_PREFIXES):
            return handler
        return self.wrap(handler, method)


class ScopedInterceptor(WrappingInterceptor):
    """Base: subclasses implement `scope(method, context)`, entered around each call."""

    def scope(
        self, method: str, ctx: grpc.aio.ServicerContext
    ) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    def wrap(self, handler: Handler, method: str) -> Handler:
        return _wrap_handler(handler, method, self.scope)


def _metadata(ctx: grpc.aio.ServicerContext) -> dict[str, str]:
    return {k: v for k, v in (ctx.invocation_metadata() or ()) if isinstance(v, str)}


class CallContextInterceptor(ScopedInterceptor):
    def __init__(self, default_deadline_seconds: float):
        self.default_deadline_seconds = default_deadline_seconds

    @contextlib.asynccontextmanager
    async def scope(self, method: str, ctx: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        token = self.bind(method, ctx)
        try:
            yield
        finally:
            call_context.reset(token)

    def bind(self, method: str, ctx: grpc.aio.ServicerContext) -> contextvars.Token[Any]:
        """Bind the call's context. Its request id goes back in the trailing
        metadata: a direct caller whose id was replaced (or who sent none)
        can match a successful answer to logs and audit entries as well (an
        error's ErrorInfo names it)."""
        bound = self.context_for(method, ctx)
        ctx.set_trailing_metadata(((call_context.REQUEST_ID_KEY, bound.request_id),))
        return call_context.bind(bound)

    def context_for(self, method: str, ctx: grpc.aio.ServicerContext) -> call_context.CallContext:
        """The call's context: request id, the verified caller's tenant, the deadline."""
        metadata = _metadata(ctx)
        remaining = ctx.time_remaining()
        if remaining is None or remaining > 1e8:  # grpc reports "infinite" as a huge value
            remaining = self.default_deadline_seconds
        # A direct caller's id is held to the gateway's rule: it is stored in
        # audit entries and rows that outlive the customer's erasure.
        request_id = request_id_or_new(metadata.get(call_context.REQUEST_ID_KEY))
        caller = call_context.VERIFIED_CALLER.get()
        return call_context.CallContext(
            request_id=request_id,
            org_id=caller.org_id if caller else "",
            actor=caller.actor if caller else "",
            scopes=caller.scopes if caller else (),
            issuer=caller.issuer if caller else "",
            deadline=time.monotonic() + remaining,
            method=method,
        )


class TracingInterceptor(ScopedInterceptor):
    skips_infrastructure = True

    def __init__(self) -> None:
        # A proxy until the process's provider is installed, that one's after.
        self._tracer = tracing.tracer("identity.rpc")

    @contextlib.asynccontextmanager
    async def scope(self, method: str, ctx: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        with self.span(method, ctx) as span:
            try:
                yield
            except DomainError as exc:
                self.mark_failed(span, exc)
                raise

    @staticmethod
    def mark_failed(span: trace.Span, error: DomainError) -> None:
        span.set_attribute("rpc.grpc.status_code", error.code)
        span.set_attribute("identity.error_reason", error.reason)

    def span(
        self, method: str, ctx: grpc.aio.ServicerContext
    ) -> contextlib.AbstractContextManager[trace.Span]:
        """The call's server span (current while it is open)."""
        parent = tracing.extract(ctx.invocation_metadata() or ())
        service, _, rpc = method.lstrip("/").partition("/")
        return tracing.server_span(
            self._tracer,
            method.lstrip("/"),
            parent,
            {
                "rpc.system": "grpc",
                "rpc.service": service,
                "rpc.method": rpc,
                "identity.request_id": call_context.request_id(),
                "identity.org_id": call_context.org_id(),
            },
        )


def _outcome(exc: BaseException | None, ctx: grpc.aio.ServicerContext) -> tuple[str, str]:
    if exc is None:
        code = ctx.code()
        return (code.name if isinstance(code, grpc.StatusCode) else "OK"), ""
    if isinstance(exc, DomainError):
        return exc.code, exc.reason
    if isinstance(exc, asyncio.CancelledError):
        return "CANCELLED", ""
    # What the error interceptor (outside this one) is about to answer.
    if isinstance(exc, NotImplementedError):
        return "UNIMPLEMENTED", "NOT_IMPLEMENTED"
    if isinstance(exc, grpc.aio.AioRpcError):
        from identity_runtime.status import remote_error

        remote = remote_error(exc)
        return remote.code, remote.reason
    if isinstance(exc, Exception) and not isinstance(exc, grpc.aio.AbortError):
        return "INTERNAL", "INTERNAL"
    code = ctx.code()
    if isinstance(code, grpc.StatusCode):
        bound = call_context.current()
        return code.name, (bound.extra.get("error_reason", "") if bound else "")
    return "UNKNOWN", ""


class AccessLogInterceptor(ScopedInterceptor):
    skips_infrastructure = True

    def __init__(self, service: str = "") -> None:
        self.service = service
        self._in_flight = metrics.RPC_IN_FLIGHT.labels(service)
        # The metric children, looked up once: (rpc, code) -> requests, rpc -> duration.
        self._requests: dict[tuple[str, str], Any] = {}
        self._durations: dict[str, Any] = {}

    def _count(self, rpc: str, code: str, elapsed: float) -> None:
        requests = self._requests.get((rpc, code))
        if requests is None:
            requests = self._requests[(rpc, code)] = metrics.RPC_REQUESTS.labels(
                self.service, rpc, code
            )
        duration = self._durations.get(rpc)
        if duration is None:
            duration = self._durations[rpc] = metrics.RPC_DURATION.labels(self.service, rpc)
        requests.inc()
        duration.observe(elapsed)

    @contextlib.asynccontextmanager
    async def scope(self, method: str, ctx: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        started = self.start()
        error: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.record(method, ctx, error, started)

    def start(self) -> float:
        """A call begins: in-flight gauge up; its start (perf_counter) for `record`."""
        self._in_flight.inc()
        return time.perf_counter()

    def record(
        self,
        method: str,
        ctx: grpc.aio.ServicerContext,
        error: BaseException | None,
        started: float,
    ) -> None:
        """The end of a call `started` (perf_counter) that raised `error`:
        in-flight gauge down, counted, timed and logged."""
        self._in_flight.dec()
        elapsed = time.perf_counter() - started
        code, reason = _outcome(error, ctx)
        rpc = method.lstrip("/")
        self._count(rpc, code, elapsed)
        fields = {
            "duration_ms": round(elapsed * 1000, 2),
            "status": code,
        }
        if reason:
            fields["reason"] = reason
        if code == "OK":
            level = "info"
        elif code in ("INTERNAL", "UNKNOWN", "DATA_LOSS"):
            level = "error"
        else:
            level = "warning"
        write_hot_line(level, "rpc", fields)


class ErrorInterceptor(ScopedInterceptor):
    """The one place that turns exceptions into gRPC statuses; each names this
    service as its origin unless it passes on a downstream's."""

    def __init__(self, service: str = ""):
        self.service = service

    @contextlib.asynccontextmanager
    async def scope(self, method: str, ctx: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        try:
            yield
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await self.translate(exc, method, ctx)

    async def translate(self, exc: Exception, method: str, ctx: grpc.aio.ServicerContext) -> None:
        """Abort the call with the status `exc` stands for (raises AbortError)."""
        try:
            raise exc
        except DomainError as domain:
            await self._abort(ctx, domain)
        except NotImplementedError:
            await self._abort(
                ctx,
                Unimplemented(
                    f"{method.lstrip('/')} is declared in the contract but not implemented yet",
                    "NOT_IMPLEMENTED",
                    {"rpc": method.lstrip("/")},
                ),
            )
        except grpc.aio.AioRpcError as downstream:
            # A downstream call failed and the servicer did not translate it:
            # pass its code and reason through unchanged.
            from identity_runtime.status import remote_error

            await self._abort(ctx, remote_error(downstream))
        except Exception:
            log.exception("unhandled error", rpc=method)
            await self._abort(
                ctx,
                Internal("internal error; quote the request id when reporting it", "INTERNAL"),
            )

    async def _abort(self, ctx: grpc.aio.ServicerContext, error: DomainError) -> None:
        if error.reason not in KNOWN_REASONS:
            log.warning("error reason not in the contract", reason=error.reason)
        bound = call_context.current()
        if bound is not None:
            bound.extra["error_reason"] = error.reason  # for the access log
        status = to_grpc_status(error, call_context.request_id(), self.service)
        # What the aio context's abort_with_status does (typeshed omits it).
        await ctx.abort(status.code, status.details, status.trailing_metadata)


class DeadlineInterceptor(ScopedInterceptor):
    @contextlib.asynccontextmanager
    async def scope(self, method: str, ctx: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        remaining = self.time_left()
        if remaining is None:
            yield
            return
        try:
            async with asyncio.timeout(remaining):
                yield
        except TimeoutError:
            raise self.overrun(remaining) from None

    @staticmethod
    def time_left() -> float | None:
        """Seconds left of the bound call's deadline (None: no deadline);
        DeadlineExceeded when it passed before the call started."""
        bound = call_context.current()
        remaining = bound.time_remaining() if bound else None
        if remaining is not None and remaining <= 0:
            raise DeadlineExceeded("the deadline passed before the call started")
        return remaining

    @staticmethod
    def overrun(remaining: float) -> DeadlineExceeded:
        """The refusal of a call still running when its `remaining` seconds ran out."""
        return DeadlineExceeded(f"the call did not finish within its deadline of {remaining:.3f}s")


class ValidationInterceptor(WrappingInterceptor):
    """Validates each request message (every message of a request stream)
    before the servicer sees it; runs inside ErrorInterceptor, which turns
    the refusal into INVALID_ARGUMENT."""

    skips_infrastructure = True

    def wrap(self, handler: Handler, method: str) -> Handler:
        return _validating(handler)


def _lenient_requests(handler: Handler) -> Handler:
    """`handler` whose single request message, when its bytes do not parse,
    reaches the chain as UNDECODABLE (refused by validation, after auth)."""
    for kind, rebuild in _HANDLER_KINDS[:2]:  # unary_unary, unary_stream
        inner = getattr(handler, kind)
        if inner is not None:
            return rebuild(
                inner, lenient(handler.request_deserializer), handler.response_serializer
            )
    return handler


def _validating(handler: Handler) -> Handler:
    def single(inner: Callable[..., Any]) -> Callable[..., Any]:
        def behaviour(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
            validate(request)
            return inner(request, ctx)

        return behaviour

    def stream(inner: Callable[..., Any]) -> Callable[..., Any]:
        async def checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
            async for request in requests:
                validate(request)
                yield request

        def behaviour(requests: Any, ctx: grpc.aio.ServicerContext) -> Any:
            return inner(checked(requests), ctx)

        return behaviour

    return _rebuilt(handler, by_request=(single, stream))


class Stage(Protocol):
    """One stage of the chain: wraps a method's handler."""

    skips_infrastructure: bool

    def wrap(self, handler: Handler, method: str) -> Handler: ...


class ChainInterceptor(WrappingInterceptor):
    """The whole chain as one grpc.aio interceptor: each method's handler is
    wrapped by every stage once (outermost first, as the separate
    interceptors did) and the wrapped handler is kept for the next call of
    that method. Per call, grpc.aio then awaits one interceptor instead of
    one per stage and no handler is rebuilt; what runs around the servicer
    is the same scopes in the same order."""

    def __init__(self, stages: list[Stage]) -> None:
        self.stages = stages
        # method -> (the handler grpc found, that handler wrapped by the chain)
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    def wrap(self, handler: Handler, method: str) -> Handler:
        quiet = method.startswith(_QUIET_PREFIXES)
        stages = self.stages
        if not quiet:
            handler = _lenient_requests(handler)
        fused = None if quiet or handler.unary_unary is None else _fusable(stages)
        if fused is not None:
            # The standard stages around a unary call, as one coroutine.
            auth, standard, rest = fused
            for stage in reversed(rest):
                handler = stage.wrap(handler, method)
            return _fused_unary(handler, method, auth, standard)
        for stage in reversed(stages):  # innermost first
            if quiet and stage.skips_infrastructure:
                continue
            handler = stage.wrap(handler, method)
        return handler

    def served(self, handler: Handler, method: str) -> Handler:
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self.wrap(handler, method)
        # Registered handlers are the same object on every call; a server
        # that builds one per call just gets it wrapped again.
        self._wrapped[method] = (handler, wrapped)
        return wrapped


class _Standard(NamedTuple):
    """The six standard stages of `server_stages`' chain, in its order."""

    calls: CallContextInterceptor
    spans: TracingInterceptor
    errors: ErrorInterceptor
    access: AccessLogInterceptor
    deadline: DeadlineInterceptor
    validation: ValidationInterceptor


_STANDARD_TYPES = (
    CallContextInterceptor,
    TracingInterceptor,
    ErrorInterceptor,
    AccessLogInterceptor,
    DeadlineInterceptor,
    ValidationInterceptor,
)


def _fusable(stages: list[Stage]) -> tuple[Any, _Standard, list[Stage]] | None:
    """(the auth stage or None, the six standard stages, the stages inside
    them) when `stages` is `server_stages`' chain; None otherwise."""
    from identity_runtime.authz import CallerAuthInterceptor

    auth = stages[0] if stages and type(stages[0]) is CallerAuthInterceptor else None
    first = 1 if auth is not None else 0
    standard = stages[first : first + len(_STANDARD_TYPES)]
    if [type(stage) for stage in standard] != list(_STANDARD_TYPES):
        return None
    return auth, _Standard._make(standard), stages[first + len(_STANDARD_TYPES) :]


def _fused_unary(handler: Handler, method: str, auth: Any, standard: _Standard) -> Handler:
    """`handler` (unary request, unary response) run inside auth, call
    context, span, error translation, access log, deadline and validation,
    in that order, outermost first: what the stages' scopes do one inside
    the other, written as one coroutine (no generator-based context manager
    and no extra coroutine per stage on each call)."""
    calls, spans, errors, access, deadline, _validation = standard
    inner = cast(_AsyncUnary, handler.unary_unary)

    async def behaviour(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
        caller_token = (
            call_context.VERIFIED_CALLER.set(await auth.admit(method, ctx))
            if auth is not None
            else None
        )
        try:
            context_token = calls.bind(method, ctx)
            try:
                with spans.span(method, ctx) as span:
                    try:
                        try:
                            started = access.start()
                            error: BaseException | None = None
                            try:
                                remaining = deadline.time_left()
                                if remaining is None:
                                    validate(request)
                                    return await inner(request, ctx)
                                try:
                                    async with asyncio.timeout(remaining):
                                        validate(request)
                                        return await inner(request, ctx)
                                except TimeoutError:
                                    raise deadline.overrun(remaining) from None
                            except BaseException as exc:
                                error = exc
                                raise
                            finally:
                                access.record(method, ctx, error, started)
                        except (asyncio.CancelledError, grpc.aio.AbortError):
                            raise
                        except Exception as exc:
                            await errors.translate(exc, method, ctx)
                            return None
                    except DomainError as exc:
                        spans.mark_failed(span, exc)
                        raise
            finally:
                call_context.reset(context_token)
        finally:
            if caller_token is not None:
                call_context.VERIFIED_CALLER.reset(caller_token)

    return grpc.unary_unary_rpc_method_handler(
        behaviour, handler.request_deserializer, handler.response_serializer
    )


def server_stages(
    default_deadline_seconds: float,
    auth: Stage | None = None,
    service: str = "",
    rate_limits: RateLimits | None = None,
    own_rate_limits: frozenset[str] = frozenset(),
) -> list[Stage]:
    """The stages of the chain, outermost first (see the module docstring);
    a server installs them as one interceptor, `ChainInterceptor(stages)`.
    `auth` (a CallerAuthInterceptor) goes first; `service` (this service's
    mesh name) is the origin its errors name and labels the RPC metrics;
    `rate_limits` counts the RPCs' declared limits (but those of
    `own_rate_limits`, which the service counts itself)."""
    return [
        *([auth] if auth is not None else []),
        CallContextInterceptor(default_deadline_seconds),
        TracingInterceptor(),
        ErrorInterceptor(service),
        AccessLogInterceptor(service),
        DeadlineInterceptor(),
        ValidationInterceptor(),
        *([RateLimitInterceptor(rate_limits, own_rate_limits)] if rate_limits is not None else []),
    ]
