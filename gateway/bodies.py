"""Reading a request body: what every route with one (the contract routes,
Face Match's uploads, the SDK demo's helper) checks while reading it.

- a Content-Encoding other than `identity` is 415 UNSUPPORTED_CONTENT_ENCODING
  before a byte is read: the gateway decodes none, and a compressed body
  would otherwise be parsed (or stored) as if it were plain;
- past `limit` bytes it is 413 at once, so an oversized body is never held whole;
- a body that has not all arrived within the body-read timeout (or the
  request's deadline, if sooner) is 408 REQUEST_BODY_TIMEOUT and the
  connection is closed: a client sending slowly, or stalling, holds no
  connection for longer, and nothing of its body is used;
- a client that closes the connection before its body has all arrived (a
  phone losing its network mid-upload) is answered the same 408, to nobody:
  its fault, not the gateway's (no 5xx, no traceback).
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request

from gateway import errors
from identity_runtime import context as call_context


def refuse_content_encoding(headers: Headers) -> None:
    """415 UNSUPPORTED_CONTENT_ENCODING unless every coding is `identity`."""
    codings = [
        coding.strip().lower()
        for value in headers.getlist("content-encoding")
        for coding in value.split(",")
    ]
    if any(coding not in ("", "identity") for coding in codings):
        raise errors.unsupported_content_encoding()


async def read_body(request: Request, limit: int, timeout_seconds: float) -> bytes:
    """The request's body, read as it arrives (413 / 415 / 408 as above)."""
    refuse_content_encoding(request.headers)
    bound = call_context.current()
    left = bound.time_remaining() if bound is not None else None
    seconds = timeout_seconds if left is None else min(timeout_seconds, left)
    received = bytearray()
    try:
        async with asyncio.timeout(max(seconds, 0.0)):
            async for chunk in request.stream():
                received += chunk
                if len(received) > limit:
                    raise errors.payload_too_large(limit)
    except TimeoutError:
        raise errors.request_body_timeout(timeout_seconds) from None
    except ClientDisconnect:
        raise errors.request_body_timeout(timeout_seconds, disconnected=True) from None
    return bytes(received)
