"""The record of processing activities (UU PDP No. 27/2022, art. 31): for
each data class of the declared retention table (retention.RETENTION), why
it is processed, on what basis, by which processors (our services), who
receives it and where it lives. `identity pdp record-of-processing` exports
it per organisation, with that organisation's retention overrides; the docs
and the tests read the same table."""

from __future__ import annotations

from dataclasses import dataclass

from identity_store.retention import RETENTION


@dataclass(frozen=True)
class Activity:
    data_class: str
    purpose: str
    # UU PDP art. 20 basis.
    legal_basis: str
    categories: str
    processors: tuple[str, ...]
    recipients: tuple[str, ...]
    specific: bool = False
    # How long, for a class the retention table does not declare (live data).
    kept: str = ""


_PARTNER = "the organisation (controller), through the API and its console"
_KYC = "KYC onboarding and step-up authentication of the organisation's customers"
_REGULATED = "legal obligation (OJK customer due diligence records)"
_SECURITY = "legitimate interest: securing access and preventing replay"

ACTIVITIES: dict[str, Activity] = {
    a.data_class: a
    for a in (
        Activity(
            "onboarding_frames",
            f"{_KYC}: evidence of the KTP and liveness captures",
            _REGULATED,
            "KTP images, face images, optional GPS/camera metadata (with consent)",
            ("kyc-tier", "capture-quality", "liveness", "embedding"),
            (_PARTNER,),
            specific=True,
        ),
        Activity(
            "step_up_frames",
            "step-up authentication of sensitive actions",
            "contract with the data subject (performance of the service)",
            "face images, optional GPS/camera metadata (with consent)",
            ("kyc-tier", "liveness", "embedding", "matching"),
            (_PARTNER,),
            specific=True,
        ),
        Activity(
            "erased_frames",
            "none: removed once the customer is erased (key already shredded)",
            "UU PDP erasure (art. 8, 16)",
            "sealed frames of an erased customer (unreadable)",
            ("kyc-tier",),
            (),
        ),
        Activity(
            "verifications",
            f"{_KYC}: the regulated record of each check and tier",
            _REGULATED,
            "outcomes, scores, reasons, NIK (sealed), tier history",
            ("kyc-tier",),
            (_PARTNER, "signed webhooks to the organisation's endpoints"),
        ),
        Activity(
            "erased_enrollments",
            "the regulated record that a reference existed (template shredded)",
            _REGULATED,
            "enrollment metadata without a readable template",
            ("matching",),
            (),
        ),
        Activity(
            "audit_log",
            "accountability: who did what to which record",
            "legal obligation (UU PDP art. 31, OJK record keeping)",
            "ids, actions, outcomes; no NIK, name, image or embedding",
            ("audit",),
            (_PARTNER + " (its own entries)", "the supervising authority on request"),
        ),
        Activity(
            "challenges",
            "anti-replay flash challenges of a capture",
            _SECURITY,
            "challenge colours, device id, nonce",
            ("liveness",),
            (),
        ),
        Activity(
            "nonces",
            "replay protection of capture bundles",
            _SECURITY,
            "device id, nonce",
            ("liveness",),
            (),
        ),
        Activity(
            "console_sessions",
            "signed-in console users of the organisation",
            _SECURITY,
            "session ids (hashed tokens), sign-in method",
            ("kyc-tier",),
            (),
        ),
        Activity(
            "webauthn_challenges",
            "passkey ceremonies of console users",
            _SECURITY,
            "single-use challenges",
            ("kyc-tier",),
            (),
        ),
        Activity(
            "console_login_throttles",
            "throttling password guessing at console sign-in",
            _SECURITY,
            "keyed hashes of the email addresses tried (never the address), failure counts",
            ("kyc-tier",),
            (),
        ),
        Activity(
            "relayed_audit_outbox",
            "delivering audit entries to the audit chain in the transaction of their action",
            _REGULATED,
            "audit entries: ids, codes, digests of captures (blanked on erasure)",
            ("kyc-tier", "audit"),
            (),
        ),
    )
}
# Face templates are matching's live data: kept while enrolled, then the row
# follows erased_enrollments.
TEMPLATES = Activity(
    "face_templates",
    f"{_KYC}: 1:1 match and 1:N duplicate search",
    "explicit consent of the data subject (specific personal data: biometrics, art. 4)",
    "face embeddings (sealed, per-customer keys)",
    ("embedding", "matching"),
    (),
    specific=True,
    kept="while enrolled; then erased",
)
# Device registrations are liveness's live data: kept while the customer is,
# deleted by the customer's erasure.
DEVICES = Activity(
    "device_keys",
    "verifying the device signature of each capture bundle",
    _SECURITY,
    "device ids, public keys, platform",
    ("liveness",),
    (),
    kept="while the customer exists; deleted on erasure",
)


def rows(
    regions: tuple[str, ...], periods: dict[str, int] | None = None
) -> list[dict[str, object]]:
    """One row per activity: the declared period (or the organisation's longer one)."""
    found = []
    for activity in (*ACTIVITIES.values(), TEMPLATES, DEVICES):
        declared = RETENTION.get(activity.data_class)
        days = None if declared is None or declared.period is None else declared.period.days
        kept = (periods or {}).get(activity.data_class, days)
        found.append(
            {
                "data_class": activity.data_class,
                "purpose": activity.purpose,
                "legal_basis": activity.legal_basis,
                "categories": activity.categories,
                "specific_personal_data": activity.specific,
                "retention_days": kept,
                "retention_basis": declared.basis if declared else activity.kept,
                "processors": list(activity.processors),
                "recipients": list(activity.recipients),
                "regions": list(regions),
            }
        )
    return found
