"""Identity Platform partner client: REST calls, signed capture bundles,
webhook verification. Imports nothing of the server."""

from identity_platform_client.capture import (
    ECDSA_P256,
    DeviceKey,
    Frame,
    build_bundle,
    bundle_digest,
    flash_frames,
    timestamp,
)
from identity_platform_client.client import ApiError, IdentityClient, RetryPolicy
from identity_platform_client.webhooks import (
    WebhookVerificationError,
    signature_valid,
    verify_webhook,
)

__all__ = [
    "ECDSA_P256",
    "ApiError",
    "DeviceKey",
    "Frame",
    "IdentityClient",
    "RetryPolicy",
    "WebhookVerificationError",
    "build_bundle",
    "bundle_digest",
    "flash_frames",
    "signature_valid",
    "timestamp",
    "verify_webhook",
]
