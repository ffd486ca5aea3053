"""Server-streaming routes: each message of the backend's stream carries one
`google.api.HttpBody` chunk (the route's `response_body`), written to the
client as it arrives (chunked transfer encoding), so neither the gateway nor
the service ever holds the whole body (the CSV exports).

The first chunk is awaited before the status line is sent, so a refusal
(INVALID_FIELD, EXPORT_TOO_LARGE, NOT_FOUND, ...) is still an ordinary JSON
error with its HTTP status. A failure after that cannot change the status:
the connection is closed without the final chunk, which HTTP clients report
as a truncated body, never as a complete file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.message import Message
from starlette.responses import StreamingResponse

from gateway import errors, transcoding
from gateway.routing import Route
from identity_runtime import mesh
from identity_runtime.logs import get_logger

log = get_logger("identity.gateway")


def _chunk(route: Route, message: Message) -> tuple[bytes, str]:
    body = getattr(message, route.response_body)
    return bytes(body.data), body.content_type or "application/octet-stream"


async def respond(
    channel: grpc.aio.Channel,
    route: Route,
    message: Message,
    deadline_seconds: float,
    headers: dict[str, str],
) -> StreamingResponse:
    call: Any = channel.unary_stream(
        route.rpc,
        request_serializer=type(message).SerializeToString,
        response_deserializer=route.response_class.FromString,
    )(message, timeout=deadline_seconds)
    chunks: AsyncIterator[Message] = call.__aiter__()
    try:
        first: Message | None = await chunks.__anext__()
    except StopAsyncIteration:
        first = None
    except grpc.aio.AioRpcError as exc:
        error = errors.from_rpc_error(exc, mesh.BY_PACKAGE[route.package].name)
        # The service names its request's fields; the caller reads the API's names.
        transcoding.rename_error_field(error, route.method.input_type)
        raise error from None
    data, media_type = _chunk(route, first) if first is not None else (b"", "")

    async def body() -> AsyncIterator[bytes]:
        try:
            if data:
                yield data
            async for later in chunks:
                yield _chunk(route, later)[0]
        except grpc.aio.AioRpcError as exc:
            log.warning(
                "stream broken after its first chunk",
                rpc=route.full_name,
                grpc_status=exc.code().name,
            )
            raise
        finally:
            call.cancel()

    return StreamingResponse(
        body(), 200, media_type=media_type or "application/octet-stream", headers=headers
    )
