"""Per-organisation liveness policy (issue 13, safe rollout): the PAD models an
organisation is pinned to, its fused PAD threshold, and two feature switches
(the flash check, shadow scoring). kyc-tier owns the table
(`org_liveness_policies`, one row per organisation, none = the deployment's
defaults) and sends the policy with each CheckLiveness call, so liveness keeps
no organisation records. Switched by the operator without a redeploy
(`identity orgs set-liveness-policy`), effective on the organisation's next
capture; every switch is audited (`org.liveness_policy`, old and new) in its
own transaction."""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey
from sqlalchemy.orm import Mapped, Session, mapped_column

from identity_runtime.errors import invalid_field
from identity_store.declarative import ID
from identity_store.types import utcnow
from services.kyc_tier import outbox
from services.kyc_tier.models import Base, Org
from services.kyc_tier.ports import DEFAULT_LIVENESS_POLICY, LivenessPolicy

# Manifest ids: lower-case letters, digits, dots, dashes and underscores.
_MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_PINNED_MODELS = 8


class OrgLivenessPolicy(Base):
    """An organisation's liveness switches (kyc-tier's table)."""

    __tablename__ = "org_liveness_policies"

    org_id: Mapped[str] = mapped_column(ID, ForeignKey("orgs.org_id"), primary_key=True)
    # Pinned PAD model ids, fused; [] = the deployment's live models.
    pad_models: Mapped[list[Any]] = mapped_column(JSON, default=list)
    pad_threshold: Mapped[float | None] = mapped_column(Float)
    flash_check: Mapped[bool] = mapped_column(Boolean, default=True)
    shadow: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


def load(session: Session, org_id: str) -> LivenessPolicy:
    row = session.get(OrgLivenessPolicy, org_id)
    if row is None:
        return DEFAULT_LIVENESS_POLICY
    return LivenessPolicy(
        pad_models=tuple(row.pad_models),
        pad_threshold=row.pad_threshold,
        flash_check=row.flash_check,
        shadow=row.shadow,
    )


def validate(policy: LivenessPolicy) -> LivenessPolicy:
    if len(policy.pad_models) > MAX_PINNED_MODELS:
        raise invalid_field("pad_models", f"at most {MAX_PINNED_MODELS} model ids")
    for model_id in policy.pad_models:
        if not _MODEL_ID.match(model_id):
            raise invalid_field("pad_models", "model ids are manifest ids, e.g. minifasnet-v2")
    threshold = policy.pad_threshold
    if threshold is not None and not (math.isfinite(threshold) and 0.0 < threshold < 1.0):
        raise invalid_field("pad_threshold", "must be strictly between 0 and 1")
    return dataclasses.replace(policy, pad_models=tuple(dict.fromkeys(policy.pad_models)))


def describe(policy: LivenessPolicy) -> dict[str, str]:
    """The policy as audit details (flat strings)."""
    return {
        "pad_models": ",".join(policy.pad_models) or "default",
        "pad_threshold": "default" if policy.pad_threshold is None else f"{policy.pad_threshold:g}",
        "flash_check": "on" if policy.flash_check else "off",
        "shadow": "on" if policy.shadow else "off",
    }


def switch(
    session: Session, org_id: str, actor: str = "", **changes: Any
) -> tuple[LivenessPolicy, LivenessPolicy]:
    """Apply `changes` (fields of LivenessPolicy) to the organisation's policy
    and audit the switch in the same transaction. (old, new); LookupError for
    an unknown organisation; a bad value writes nothing."""
    if session.get(Org, org_id, with_for_update=True) is None:
        raise LookupError(org_id)
    old = load(session, org_id)
    new = validate(dataclasses.replace(old, **changes))
    row = session.get(OrgLivenessPolicy, org_id)
    if row is None:
        row = OrgLivenessPolicy(org_id=org_id)
        session.add(row)
    row.pad_models = list(new.pad_models)
    row.pad_threshold = new.pad_threshold
    row.flash_check = new.flash_check
    row.shadow = new.shadow
    row.updated_at = utcnow()
    before, after = describe(old), describe(new)
    outbox.record(
        session,
        org_id,
        "org.liveness_policy",
        f"org:{org_id}",
        "success",
        actor=actor,
        details={
            **{f"old_{k}": v for k, v in before.items() if v != after[k]},
            **{f"new_{k}": v for k, v in after.items() if v != before[k]},
        },
    )
    return old, new
