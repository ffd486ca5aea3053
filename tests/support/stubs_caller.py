"""An internal team's backend calling kyc-tier over gRPC with nothing but the
stubs package (identity-platform-stubs) and its three dependencies.

Run by tests/e2e/test_stubs_package.py with the Python of a fresh virtualenv
(so it imports nothing of this repository: not even tests.support). The
customer's device is the test: this backend prints each challenge it issues as
one JSON line and reads back the signed capture bundle (proto3 JSON) the
device made for it, as a backend forwards its app's captures.

    python stubs_caller.py ADDRESS API_KEY CA CERT KEY
"""

from __future__ import annotations

import json
import sys
from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2

from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.kyc_tier.v1 import (
    customers_pb2,
    customers_pb2_grpc,
    devices_pb2,
    devices_pb2_grpc,
    face_pb2,
    face_pb2_grpc,
    ktp_pb2,
    ktp_pb2_grpc,
    resources_pb2,
    step_up_pb2,
    step_up_pb2_grpc,
)

DEADLINE = 120.0


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def hear() -> dict[str, Any]:
    return dict(json.loads(sys.stdin.readline()))


def bundle() -> resources_pb2.CaptureBundle:
    return json_format.ParseDict(hear()["bundle"], resources_pb2.CaptureBundle())


def reason_of(error: grpc.RpcError) -> str:
    """The ErrorInfo reason of a failed call (docs/grpc-clients.md)."""
    for key, value in error.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info.reason
    return ""


def main() -> None:
    address, api_key, ca, cert, key = sys.argv[1:6]
    credentials = grpc.ssl_channel_credentials(
        open(ca, "rb").read(), open(key, "rb").read(), open(cert, "rb").read()
    )
    metadata = (("x-api-key", api_key), ("x-request-id", "internal-caller-1"))
    with grpc.secure_channel(address, credentials) as channel:
        customers = customers_pb2_grpc.CustomerServiceStub(channel)
        devices = devices_pb2_grpc.DeviceServiceStub(channel)
        ktp = ktp_pb2_grpc.KtpServiceStub(channel)
        face = face_pb2_grpc.FaceServiceStub(channel)
        step_up = step_up_pb2_grpc.StepUpServiceStub(channel)
        call = {"metadata": metadata, "timeout": DEADLINE}

        device = hear()
        created = customers.CreateCustomer(
            customers_pb2.CreateCustomerRequest(
                external_id=device["external_id"], full_name="Siti Rahayu", nik=device["nik"]
            ),
            **call,
        )
        customer_id = created.customer.customer_id
        devices.RegisterDevice(
            devices_pb2.RegisterDeviceRequest(
                customer_id=customer_id,
                device_id=device["device_id"],
                algorithm=types_pb2.KEY_ALGORITHM_ECDSA_P256_SHA256,
                public_key_pem=device["public_key_pem"],
                platform="android",
            ),
            **call,
        )
        say(
            step="created",
            customer_id=customer_id,
            tier=types_pb2.KycTier.Name(created.customer.tier),
        )

        challenge = ktp.IssueKtpChallenge(
            ktp_pb2.IssueKtpChallengeRequest(customer_id=customer_id), **call
        ).challenge
        say(step="ktp", challenge=json_format.MessageToDict(challenge))
        captured = ktp.SubmitKtpCapture(
            ktp_pb2.SubmitKtpCaptureRequest(
                customer_id=customer_id,
                challenge_id=challenge.challenge_id,
                bundle=bundle(),
                ocr_fields=ktp_pb2.KtpOcrFields(**hear()["ocr_fields"]),
            ),
            **call,
        )
        say(step="ktp_done", tier=types_pb2.KycTier.Name(captured.tier))

        purpose = types_pb2.CHALLENGE_PURPOSE_FACE_LIVENESS
        challenge = face.IssueFlashChallenge(
            face_pb2.IssueFlashChallengeRequest(customer_id=customer_id, purpose=purpose), **call
        ).challenge
        say(step="liveness", challenge=json_format.MessageToDict(challenge))
        live = face.CheckFaceLiveness(
            face_pb2.CheckFaceLivenessRequest(
                customer_id=customer_id, challenge_id=challenge.challenge_id, bundle=bundle()
            ),
            **call,
        )
        matched = face.MatchFace(
            face_pb2.MatchFaceRequest(
                customer_id=customer_id,
                liveness_verification_id=live.verification.verification_id,
            ),
            **call,
        )
        say(step="premium", tier=types_pb2.KycTier.Name(matched.tier))

        purpose = types_pb2.CHALLENGE_PURPOSE_STEP_UP
        challenge = face.IssueFlashChallenge(
            face_pb2.IssueFlashChallengeRequest(customer_id=customer_id, purpose=purpose), **call
        ).challenge
        say(step="step_up", challenge=json_format.MessageToDict(challenge))
        decision = step_up.StepUp(
            step_up_pb2.StepUpRequest(
                customer_id=customer_id,
                challenge_id=challenge.challenge_id,
                bundle=bundle(),
                action="transfer",
            ),
            **call,
        )
        say(step="decided", allow=decision.allow, verification_id=decision.verification_id)

        # Refusals come back as a status with one ErrorInfo: decode its reason.
        refusals = {}
        for name, request in (
            ("missing", customers_pb2.GetCustomerRequest(customer_id="cus_unknown")),
            ("empty", step_up_pb2.StepUpRequest()),
        ):
            try:
                if name == "missing":
                    customers.GetCustomer(request, **call)
                else:
                    step_up.StepUp(request, **call)
            except grpc.RpcError as error:
                refusals[name] = [error.code().name, reason_of(error), error.details()]
        say(step="refusals", refusals=refusals)

        # The contract's rate limits hold over gRPC too (KTP challenges: 10 a
        # minute per customer; one was issued above).
        issued = 1
        while issued <= 11:
            try:
                ktp.IssueKtpChallenge(
                    ktp_pb2.IssueKtpChallengeRequest(customer_id=customer_id), **call
                )
                issued += 1
            except grpc.RpcError as error:
                say(step="limited", issued=issued, refused=[error.code().name, reason_of(error)])
                break
        else:
            say(step="limited", issued=issued, refused=[])


if __name__ == "__main__":
    main()
