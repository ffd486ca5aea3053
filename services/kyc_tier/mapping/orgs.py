"""Organisation settings: domain -> protobuf."""

from __future__ import annotations

from identity_platform_api.kyc_tier.v1 import orgs_pb2
from identity_runtime.convert import message
from services.kyc_tier.org_settings import OrgSettings


def org_settings(settings: OrgSettings) -> orgs_pb2.OrgSettings:
    threshold = settings.match_threshold
    return message(
        orgs_pb2.OrgSettings,
        settings,
        match_threshold=message(
            orgs_pb2.MatchThreshold, threshold.info, is_default=threshold.is_default
        ),
    )
