"""What liveness keeps per customer: SDK devices and capture challenges.

    POST /api/identity/devices/register          liveness.RegisterDevice
    POST /api/identity/document/ktp/challenge    liveness.IssueChallenge (via the KTP flow)
    POST /api/identity/face/flash-challenge      liveness.IssueChallenge (via the face flow)

Each is for an active customer of the caller's organisation, and audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from identity_runtime.errors import DomainError, invalid_field
from services.kyc_tier import outbox, records
from services.kyc_tier.ports import Challenge, DeviceRegistration, Liveness
from services.kyc_tier.store import Store

MAX_DEVICE_ID_LENGTH = 128
DEVICE_LIMIT_REACHED = "DEVICE_LIMIT_REACHED"


@dataclass(frozen=True)
class DeviceKey:
    """A device's public key, as the SDK registers it."""

    device_id: str
    algorithm: int  # KeyAlgorithm number of the contract
    public_key_pem: str
    platform: str = ""


async def require_active(store: Store, org_id: str, customer_id: str) -> None:
    await store.read(
        lambda s: records.require_active(records.load_customer(s, org_id, customer_id))
    )


@dataclass
class Challenges:
    store: Store
    liveness: Liveness

    async def issue(self, org_id: str, customer_id: str, purpose: str) -> Challenge:
        await require_active(self.store, org_id, customer_id)
        challenge = await self.liveness.issue_challenge(customer_id, purpose)
        await self.store.write(
            lambda s: outbox.record(
                s,
                org_id,
                "challenge.issue",
                f"customer:{customer_id}",
                "success",
                details={"purpose": purpose, "challenge_id": challenge.challenge_id},
            )
        )
        return challenge


@dataclass
class DeviceFlow:
    store: Store
    liveness: Liveness

    async def register(self, org_id: str, customer_id: str, key: DeviceKey) -> DeviceRegistration:
        if not 1 <= len(key.device_id) <= MAX_DEVICE_ID_LENGTH:
            raise invalid_field("device_id", f"must be 1 to {MAX_DEVICE_ID_LENGTH} characters")
        if not key.public_key_pem.strip():
            raise invalid_field("public_key_pem", "is required")
        await require_active(self.store, org_id, customer_id)
        try:
            registered = await self.liveness.register_device(
                customer_id, key.device_id, key.algorithm, key.public_key_pem.encode(), key.platform
            )
        except DomainError as error:
            # liveness names its own field; the partner sent public_key_pem.
            if error.metadata.get("field") == "public_key":
                error.rename_field("public_key_pem")
            if error.reason == DEVICE_LIMIT_REACHED:
                # A refused key is a trace of someone minting many: audited.
                await self.store.write(
                    lambda s: outbox.record(
                        s,
                        org_id,
                        "device.register",
                        f"customer:{customer_id}",
                        "denied",
                        details={"device_id": key.device_id, "reason": DEVICE_LIMIT_REACHED},
                    )
                )
            raise
        await self.store.write(
            lambda s: outbox.record(
                s,
                org_id,
                "device.register",
                f"customer:{customer_id}",
                "success",
                details={
                    "device_id": key.device_id,
                    "created": registered.created,
                    "key_fingerprint": registered.key_fingerprint,
                },
            )
        )
        return registered
