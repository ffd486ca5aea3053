"""gRPC servicers of face-match: convert, call the core, convert."""

from __future__ import annotations

from typing import Any

from identity_platform_api.face_match.v1 import (
    oauth_pb2,
    oauth_pb2_grpc,
    submissions_pb2,
    submissions_pb2_grpc,
)
from identity_runtime import context
from identity_runtime.convert import timestamp
from identity_runtime.server import CoreServicer
from services.face_match import mapping
from services.face_match.bootstrap import FaceMatchCore


class FaceMatchServicer(CoreServicer[FaceMatchCore]):
    """Base of both face-match servicers: each serves the one face-match core."""


class SubmissionServiceServicer(FaceMatchServicer, submissions_pb2_grpc.SubmissionServiceServicer):
    async def CreateSubmission(
        self, request: submissions_pb2.CreateSubmissionRequest, _: Any
    ) -> submissions_pb2.CreateSubmissionResponse:
        done = await self.core.submissions.create(
            context.require_org(),
            context.actor(),
            request.correlation_id,
            mapping.reference_type(request.reference_type),
            request.callback_url,
        )
        return mapping.created(done)

    async def ConfirmSubmission(
        self, request: submissions_pb2.ConfirmSubmissionRequest, _: Any
    ) -> submissions_pb2.ConfirmSubmissionResponse:
        view = await self.core.submissions.confirm(
            context.require_org(), context.actor(), request.correlation_id
        )
        return submissions_pb2.ConfirmSubmissionResponse(
            correlation_id=view.correlation_id, state=mapping.STATE_TO_PROTO[view.state]
        )

    async def GetSubmissionStatus(
        self, request: submissions_pb2.GetSubmissionStatusRequest, _: Any
    ) -> submissions_pb2.GetSubmissionStatusResponse:
        view = await self.core.submissions.status(context.require_org(), request.correlation_id)
        return mapping.status(view)

    async def GetSubmission(
        self, request: submissions_pb2.GetSubmissionRequest, _: Any
    ) -> submissions_pb2.GetSubmissionResponse:
        view = await self.core.submissions.details(context.require_org(), request.correlation_id)
        return submissions_pb2.GetSubmissionResponse(submission=mapping.details(view))

    async def EraseSubmission(
        self, request: submissions_pb2.EraseSubmissionRequest, _: Any
    ) -> submissions_pb2.EraseSubmissionResponse:
        submission_id, at = await self.core.submissions.erase(
            context.require_org(), context.actor(), request.correlation_id
        )
        return submissions_pb2.EraseSubmissionResponse(
            submission_id=submission_id, erased_at=timestamp(at)
        )

    async def RedeliverCallback(
        self, request: submissions_pb2.RedeliverCallbackRequest, _: Any
    ) -> submissions_pb2.RedeliverCallbackResponse:
        view = await self.core.submissions.redeliver_callback(
            context.require_org(), context.actor(), request.correlation_id
        )
        return submissions_pb2.RedeliverCallbackResponse(callback=mapping.callback_status(view))

    async def RotateCallbackSecret(
        self, request: submissions_pb2.RotateCallbackSecretRequest, _: Any
    ) -> submissions_pb2.RotateCallbackSecretResponse:
        secret, expires = await self.core.submissions.rotate_callback_secret(
            context.require_org(), context.actor(), request.overlap_seconds
        )
        return submissions_pb2.RotateCallbackSecretResponse(
            callback_signing_secret=secret, previous_secret_expires_at=timestamp(expires)
        )

    async def PutObject(
        self, request: submissions_pb2.PutObjectRequest, _: Any
    ) -> submissions_pb2.PutObjectResponse:
        size = await self.core.submissions.put_object(
            request.object_key,
            request.expires,
            request.signature,
            request.content_type,
            request.data,
        )
        return submissions_pb2.PutObjectResponse(size=size)

    async def AuthorizeUpload(
        self, request: submissions_pb2.AuthorizeUploadRequest, _: Any
    ) -> submissions_pb2.AuthorizeUploadResponse:
        max_bytes = await self.core.submissions.authorize_upload(
            request.object_key,
            request.expires,
            request.signature,
            request.content_type,
            request.declared_size if request.HasField("declared_size") else None,
        )
        return submissions_pb2.AuthorizeUploadResponse(max_bytes=max_bytes)


class OAuthServiceServicer(FaceMatchServicer, oauth_pb2_grpc.OAuthServiceServicer):
    async def IssueToken(
        self, request: oauth_pb2.IssueTokenRequest, _: Any
    ) -> oauth_pb2.IssueTokenResponse:
        issued = await self.core.oauth.issue(
            request.grant_type, request.client_id, request.client_secret, request.scope
        )
        return mapping.token(issued)

    async def GetJwks(self, request: oauth_pb2.GetJwksRequest, _: Any) -> oauth_pb2.GetJwksResponse:
        return oauth_pb2.GetJwksResponse(
            keys=[oauth_pb2.Jwk(**jwk) for jwk in self.core.oauth.keys.jwks()]
        )

    async def CreateClient(
        self, request: oauth_pb2.CreateClientRequest, _: Any
    ) -> oauth_pb2.CreateClientResponse:
        view, secret = await self.core.oauth.create(
            context.require_org(), request.name, context.actor()
        )
        return oauth_pb2.CreateClientResponse(client=mapping.client(view), client_secret=secret)

    async def RevokeClient(
        self, request: oauth_pb2.RevokeClientRequest, _: Any
    ) -> oauth_pb2.RevokeClientResponse:
        view = await self.core.oauth.revoke(
            context.require_org(), request.client_id, context.actor()
        )
        return oauth_pb2.RevokeClientResponse(client=mapping.client(view))

    async def AuthenticateClient(
        self, request: oauth_pb2.AuthenticateClientRequest, _: Any
    ) -> oauth_pb2.AuthenticateClientResponse:
        org_id = await self.core.oauth.authenticate_client(request.client_id)
        return oauth_pb2.AuthenticateClientResponse(org_id=org_id, client_id=request.client_id)

    async def GetClientRevocationEpoch(
        self, request: oauth_pb2.GetClientRevocationEpochRequest, _: Any
    ) -> oauth_pb2.GetClientRevocationEpochResponse:
        epoch = await self.core.oauth.revocation_epoch()
        return oauth_pb2.GetClientRevocationEpochResponse(epoch=epoch)
