"""gRPC servicer of the liveness service: convert, call the core, convert."""

from __future__ import annotations

from typing import Any

from identity_platform_api.liveness.v1 import liveness_pb2 as pb
from identity_platform_api.liveness.v1 import liveness_pb2_grpc
from identity_runtime import context
from identity_runtime.listing import list_reply
from identity_runtime.server import CoreServicer
from services.liveness import mapping
from services.liveness.bootstrap import LivenessCore
from services.liveness.devices import forget_customer_devices, list_devices, revoke_device


class LivenessServiceServicer(
    CoreServicer[LivenessCore], liveness_pb2_grpc.LivenessServiceServicer
):
    async def IssueChallenge(
        self, request: pb.IssueChallengeRequest, _: Any
    ) -> pb.IssueChallengeResponse:
        issued = await self.core.liveness.issue_challenge(
            context.require_org(), request.customer_id, mapping.purpose(request.purpose)
        )
        return pb.IssueChallengeResponse(challenge=mapping.challenge(issued))

    async def RegisterDevice(
        self, request: pb.RegisterDeviceRequest, _: Any
    ) -> pb.RegisterDeviceResponse:
        record, created = await self.core.liveness.register_device(
            context.require_org(),
            request.device_id,
            request.customer_id,
            mapping.algorithm(request.algorithm),
            request.public_key,
            request.platform,
        )
        return pb.RegisterDeviceResponse(device=mapping.device(record), created=created)

    async def ListDevices(self, request: pb.ListDevicesRequest, _: Any) -> pb.ListDevicesResponse:
        found = await list_devices(
            self.core.liveness.database, context.require_org(), request.customer_id
        )
        return list_reply(pb.ListDevicesResponse, found, devices=mapping.device)

    async def RevokeDevice(
        self, request: pb.RevokeDeviceRequest, _: Any
    ) -> pb.RevokeDeviceResponse:
        liveness = self.core.liveness
        record, revoked = await revoke_device(
            liveness.database,
            context.require_org(),
            request.customer_id,
            request.device_id,
            liveness.clock(),
        )
        return pb.RevokeDeviceResponse(device=mapping.device(record), revoked=revoked)

    async def ForgetCustomerDevices(
        self, request: pb.ForgetCustomerDevicesRequest, _: Any
    ) -> pb.ForgetCustomerDevicesResponse:
        forgotten = await forget_customer_devices(
            self.core.liveness.database, context.require_org(), request.customer_id
        )
        return pb.ForgetCustomerDevicesResponse(
            devices_forgotten=forgotten.devices, challenges_forgotten=forgotten.challenges
        )

    async def CheckLiveness(
        self, request: pb.CheckLivenessRequest, _: Any
    ) -> pb.CheckLivenessResponse:
        decision = await self.core.liveness.check_liveness(
            context.require_org(), mapping.liveness_request(request)
        )
        return mapping.liveness_response(decision)

    async def CheckAttestation(
        self, request: pb.CheckAttestationRequest, _: Any
    ) -> pb.CheckAttestationResponse:
        checked = mapping.attestation_request(request)
        await self.core.liveness.check_attestation(context.require_org(), checked)
        return pb.CheckAttestationResponse(device_id=checked.device_id)
