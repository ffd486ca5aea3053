"""liveness: challenges, devices, and the check of a capture."""

from __future__ import annotations

from typing import Any

from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.liveness.v1 import liveness_pb2, liveness_pb2_grpc
from identity_runtime.clients import ClientFactory
from identity_runtime.convert import same_named, timestamp
from services.kyc_tier import ports
from services.kyc_tier.adapters.calls import call, opaque
from services.kyc_tier.mapping.enums import (
    PURPOSE_FROM_PROTO,
    PURPOSE_TO_PROTO,
    reasons_from_proto,
    when,
)


def _challenge(message: types_pb2.FlashChallenge) -> ports.Challenge:
    return same_named(
        ports.Challenge,
        message,
        purpose=PURPOSE_FROM_PROTO.get(message.purpose, ""),
        sequence=tuple(colour.hex for colour in message.sequence),
        issued_at=when(message.issued_at),
        expires_at=when(message.expires_at),
    )


def _device(message: liveness_pb2.Device) -> ports.DeviceInfo:
    return same_named(
        ports.DeviceInfo,
        message,
        registered_at=when(message.registered_at),
        revoked_at=when(message.revoked_at),
    )


def _signed(capture: ports.SignedCapture) -> dict[str, Any]:
    """The fields CheckAttestation and CheckLiveness share: the capture's claim."""
    attestation = capture.attestation
    return {
        "customer_id": capture.customer_id,
        "purpose": PURPOSE_TO_PROTO[capture.purpose],
        "challenge_id": capture.challenge_id,
        "attestation": types_pb2.BundleAttestation(
            device_id=attestation.device_id,
            nonce=attestation.nonce,
            bundle_sha256=attestation.bundle_sha256,
            signature=attestation.signature,
            captured_at=timestamp(attestation.captured_at),
        ),
        "computed_bundle_sha256": capture.computed_bundle_sha256,
    }


def policy_message(policy: ports.LivenessPolicy) -> liveness_pb2.LivenessPolicy:
    return liveness_pb2.LivenessPolicy(
        pad_models=policy.pad_models,
        pad_threshold=policy.pad_threshold,
        flash_check_disabled=not policy.flash_check,
        shadow_disabled=not policy.shadow,
    )


class GrpcLiveness:
    def __init__(self, clients: ClientFactory):
        self.stub = clients.stub("liveness", liveness_pb2_grpc.LivenessServiceStub)

    async def issue_challenge(self, customer_id: str, purpose: str) -> ports.Challenge:
        request = liveness_pb2.IssueChallengeRequest(
            customer_id=customer_id, purpose=PURPOSE_TO_PROTO[purpose]
        )
        reply = await call("liveness", self.stub.IssueChallenge(request))
        return _challenge(reply.challenge)

    async def register_device(
        self, customer_id: str, device_id: str, algorithm: int, public_key: bytes, platform: str
    ) -> ports.DeviceRegistration:
        request = liveness_pb2.RegisterDeviceRequest(
            device_id=device_id,
            customer_id=customer_id,
            algorithm=types_pb2.KeyAlgorithm.ValueType(algorithm),
            public_key=public_key,
            platform=platform,
        )
        reply = await call("liveness", self.stub.RegisterDevice(request))
        registered_at = when(reply.device.registered_at)
        return same_named(
            ports.DeviceRegistration,
            reply.device,
            registered_at=registered_at,
            created=reply.created,
        )

    async def forget_devices(self, customer_id: str) -> int:
        request = liveness_pb2.ForgetCustomerDevicesRequest(customer_id=customer_id)
        reply = await call("liveness", self.stub.ForgetCustomerDevices(request))
        return reply.devices_forgotten

    async def list_devices(self, customer_id: str) -> tuple[ports.DeviceInfo, ...]:
        request = liveness_pb2.ListDevicesRequest(customer_id=customer_id)
        reply = await call("liveness", self.stub.ListDevices(request))
        return tuple(_device(d) for d in reply.devices)

    async def revoke_device(self, customer_id: str, device_id: str) -> ports.DeviceInfo:
        request = liveness_pb2.RevokeDeviceRequest(customer_id=customer_id, device_id=device_id)
        reply = await call("liveness", self.stub.RevokeDevice(request))
        return _device(reply.device)

    async def check_attestation(self, capture: ports.SignedCapture, resume: bool = False) -> None:
        request = liveness_pb2.CheckAttestationRequest(**_signed(capture), resume=resume)
        await call("liveness", self.stub.CheckAttestation(request))

    async def check(
        self,
        capture: ports.SignedCapture,
        evidence: ports.LivenessEvidence | None,
        policy: ports.LivenessPolicy = ports.DEFAULT_LIVENESS_POLICY,
        resume: bool = False,
    ) -> ports.LivenessDecision:
        request = liveness_pb2.CheckLivenessRequest(
            **_signed(capture), policy=policy_message(policy), resume=resume
        )
        if evidence is not None:
            # What GrpcCaptureQuality returned, forwarded by the flows unopened.
            if evidence.crops is not None:
                request.pad_crops.extend(opaque(evidence.crops, types_pb2.FaceCrops).pad_crops)
            request.frames.extend(
                opaque(e, liveness_pb2.FrameEvidence) for e in evidence.frame_evidence
            )
        reply = await call("liveness", self.stub.CheckLiveness(request))
        return same_named(
            ports.LivenessDecision,
            reply,
            reasons=reasons_from_proto(reply.reasons),
            pad_models={m.model_id: m.live_score for m in reply.pad_models},
            pad_threshold=reply.pad_threshold,
        )
