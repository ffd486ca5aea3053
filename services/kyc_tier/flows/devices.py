"""What liveness keeps per customer: SDK devices and capture challenges.

    POST /api/identity/devices/register          liveness.RegisterDevice
    GET  /api/identity/customers/{id}/devices    liveness.ListDevices
    POST /api/identity/customers/{id}/devices/{device_id}/revoke
                                                 liveness.RevokeDevice
    POST /api/identity/document/ktp/challenge    liveness.IssueChallenge (via the KTP flow)
    POST /api/identity/face/flash-challenge      liveness.IssueChallenge (via the face flow)

Each is for an active customer of the caller's organisation; all but the
listing are audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from identity_capture.limits import MAX_DEVICE_ID_LENGTH
from identity_runtime.errors import DomainError, invalid_field
from services.kyc_tier import outbox, records
from services.kyc_tier.ports import Challenge, DeviceInfo, DeviceRegistration, Liveness
from services.kyc_tier.store import Store

# Registrations refused for these are audited: traces of someone minting many
# keys, or trying to bring a revoked (lost, stolen) device back.
AUDITED_REFUSALS = frozenset({"DEVICE_LIMIT_REACHED", "DEVICE_REVOKED"})


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


async def audit(
    store: Store, org_id: str, action: str, customer_id: str, outcome: str, **details: Any
) -> None:
    """One entry about the customer in the audit outbox."""
    await store.write(
        lambda s: outbox.record(
            s, org_id, action, f"customer:{customer_id}", outcome, details=details
        )
    )


@dataclass
class Challenges:
    store: Store
    liveness: Liveness

    async def issue(self, org_id: str, customer_id: str, purpose: str) -> Challenge:
        await require_active(self.store, org_id, customer_id)
        challenge = await self.liveness.issue_challenge(customer_id, purpose)
        await audit(
            self.store,
            org_id,
            "challenge.issue",
            customer_id,
            "success",
            purpose=purpose,
            challenge_id=challenge.challenge_id,
        )
        return challenge


def require_device_id(device_id: str) -> None:
    if not 1 <= len(device_id) <= MAX_DEVICE_ID_LENGTH:
        raise invalid_field("device_id", f"must be 1 to {MAX_DEVICE_ID_LENGTH} characters")


@dataclass
class DeviceFlow:
    store: Store
    liveness: Liveness

    async def register(self, org_id: str, customer_id: str, key: DeviceKey) -> DeviceRegistration:
        require_device_id(key.device_id)
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
            if error.reason in AUDITED_REFUSALS:
                await audit(
                    self.store,
                    org_id,
                    "device.register",
                    customer_id,
                    "denied",
                    device_id=key.device_id,
                    reason=error.reason,
                )
            raise
        await audit(
            self.store,
            org_id,
            "device.register",
            customer_id,
            "success",
            device_id=key.device_id,
            created=registered.created,
            key_fingerprint=registered.key_fingerprint,
        )
        return registered

    async def list(self, org_id: str, customer_id: str) -> tuple[DeviceInfo, ...]:
        await require_active(self.store, org_id, customer_id)
        return await self.liveness.list_devices(customer_id)

    async def revoke(self, org_id: str, customer_id: str, device_id: str) -> DeviceInfo:
        """Revoke the customer's device (idempotent). Each call that answers a
        revoked device is audited: a retry after a failure between liveness
        and the audit outbox still leaves the entry."""
        require_device_id(device_id)
        await require_active(self.store, org_id, customer_id)
        device = await self.liveness.revoke_device(customer_id, device_id)
        await audit(
            self.store, org_id, "device.revoke", customer_id, "success", device_id=device_id
        )
        return device
