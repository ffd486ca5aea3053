"""`/sdk-demo`: the web SDK's demo page, on the one-machine run only.

A partner developer opens it with a webcam and onboards themselves: a KTP
card, then a selfie (liveness, then a face match against the card), then a
step-up. The page never sees an API key: its tiny backend here holds the
key of `GATEWAY_SDK_DEMO_API_KEY_FILE` (the local organisation's, written by
`identity up`) and answers the page with an SDK session token for a customer
it creates, as a partner's backend would. On only with `GATEWAY_SDK_DEMO`
(`identity up` sets it in development; production never does).

- `GET /sdk-demo`: the page (gateway/sdk_demo_ui); `/sdk-demo/demo.js` its
  script, `/sdk-demo/identity-capture.js` the built SDK (sdk/web/dist);
- `POST /sdk-demo/session`: `{fullName, nik}` -> a new customer and its SDK
  session token;
- `POST /sdk-demo/match`: with the session token, the face match of the
  page's live selfie that takes the customer to premium.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import Response

from gateway import bodies, errors, sdk_access, transcoding
from gateway.auth import Principal
from identity_platform_api.kyc_tier.v1 import customers_pb2, face_pb2, sdk_sessions_pb2
from identity_runtime import context as call_context

if TYPE_CHECKING:
    from gateway.app import Gateway

PREFIX = "/sdk-demo"
ROOT = Path(__file__).parent / "sdk_demo_ui"
SDK_DIST = Path(__file__).resolve().parent.parent / "sdk" / "web" / "dist"
_JS = "text/javascript; charset=utf-8"
_FILES = {
    PREFIX: (ROOT / "index.html", "text/html; charset=utf-8"),
    PREFIX + "/": (ROOT / "index.html", "text/html; charset=utf-8"),
    PREFIX + "/demo.js": (ROOT / "demo.js", _JS),
    PREFIX + "/identity-capture.js": (SDK_DIST / "identity-capture.iife.js", _JS),
}
# The SDK injects its own <style> element: styles may be inline, scripts may not.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' blob: data:; media-src 'self' blob: mediastream:; connect-src 'self'; "
        "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_CREATE_CUSTOMER = "/identity.kyc_tier.v1.CustomerService/CreateCustomer"
_CREATE_SESSION = "/identity.kyc_tier.v1.SdkSessionService/CreateSdkSession"
_MATCH = "/identity.kyc_tier.v1.FaceService/MatchFace"


def is_demo(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def _json(message: Message | dict[str, Any]) -> Response:
    body = (
        message
        if isinstance(message, dict)
        else json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    )
    return Response(json.dumps(body).encode(), 200, media_type="application/json", headers=HEADERS)


class SdkDemo:
    """The page's files and its backend, with the gateway's mesh channels."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        path = gateway.settings.sdk_demo_api_key_file
        self._key_file = Path(path) if path is not None else None

    async def serve(self, request: Request, path: str) -> Response:
        if path in (PREFIX + "/session", PREFIX + "/match"):
            if request.method != "POST":
                raise errors.method_not_allowed(["POST"])
            # JSON only: a cross-site form cannot post it without a preflight,
            # which /sdk-demo never answers.
            if (request.headers.get("content-type") or "").split(";")[0].strip() != (
                "application/json"
            ):
                raise errors.unsupported_media_type()
            body = await self._body(request, self.gateway.settings.body_read_timeout_seconds)
            if path.endswith("/session"):
                return await self._session(body)
            return await self._match(request, body)
        found = _FILES.get(path)
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed(["GET", "HEAD"])
        if found is None or not found[0].is_file():
            missing = "the SDK is not built (cd sdk/web && npm run build)" if found else "not found"
            return Response(missing, 404, media_type="text/plain", headers=HEADERS)
        return Response(found[0].read_bytes(), 200, media_type=found[1], headers=HEADERS)

    @staticmethod
    async def _body(request: Request, timeout_seconds: float) -> dict[str, Any]:
        raw = await bodies.read_body(request, 4096, timeout_seconds)
        # The API's parser: not UTF-8, not JSON or a lone surrogate (which no
        # proto string can hold) is MALFORMED_REQUEST.
        body = transcoding.parse_json(raw or b"{}")
        if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
            raise errors.malformed("the body must be an object of strings")
        return body

    async def _partner(self) -> Principal:
        if self._key_file is None or not self._key_file.is_file():
            raise errors.GatewayError(
                "FAILED_PRECONDITION", "FAILED_PRECONDITION", "the demo has no API key file"
            )
        return await self.gateway.api_keys.authenticate(self._key_file.read_text().strip())

    async def _as(self, caller: Principal, rpc: str, request: Message, reply: type[Any]) -> Any:
        outer = call_context.current()
        token = call_context.bind(
            call_context.CallContext(
                request_id=outer.request_id if outer else call_context.new_request_id(),
                org_id=caller.org_id,
                actor=caller.actor,
                scopes=tuple(sorted(caller.scopes)),
                deadline=outer.deadline if outer else None,
                method=rpc.lstrip("/"),
            )
        )
        try:
            return await self.gateway._invoke("kyc_tier", rpc, request, reply)
        finally:
            call_context.reset(token)

    async def _session(self, body: dict[str, str]) -> Response:
        """What a partner's backend does: its customer, then an SDK session for them."""
        partner = await self._partner()
        created = await self._as(
            partner,
            _CREATE_CUSTOMER,
            customers_pb2.CreateCustomerRequest(
                external_id=f"sdk-demo-{secrets.token_hex(6)}",
                full_name=body.get("fullName", "")[:256],
                nik=body.get("nik", "")[:32],
            ),
            customers_pb2.CreateCustomerResponse,
        )
        customer_id = created.customer.customer_id
        minted = await self._as(
            partner,
            _CREATE_SESSION,
            sdk_sessions_pb2.CreateSdkSessionRequest(customer_id=customer_id),
            sdk_sessions_pb2.CreateSdkSessionResponse,
        )
        return _json(
            {
                "customerId": customer_id,
                "token": minted.token,
                "expiresAt": minted.session.expires_at.ToJsonString(),
            }
        )

    async def _match(self, request: Request, body: dict[str, str]) -> Response:
        """The face match of the page's live selfie against its card, for the
        session's own customer (the token is the credential)."""
        token = sdk_access.presented_token(request.headers.getlist("authorization"), [])
        if token is None:
            raise sdk_access.invalid_token("this needs the page's SDK session token")
        session = await self.gateway._sdk_session(token)
        reply = await self._as(
            await self._partner(),
            _MATCH,
            face_pb2.MatchFaceRequest(
                customer_id=session.customer_id,
                liveness_verification_id=body.get("livenessVerificationId", "")[:128],
            ),
            face_pb2.MatchFaceResponse,
        )
        return _json(reply)
