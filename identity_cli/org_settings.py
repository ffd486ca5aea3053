"""`identity orgs settings|set-match-threshold|set-evidence-secret|set-default-webhook`:
an organisation's settings, as its internal-scope callers change them over
`/api/identity/org/settings` (kyc-tier's OrgSettingsService), for operators
on a machine that can reach the database. Every change is audited under
`system:identity-cli`; a secret is never printed except a generated one, once.

The threshold is bounded as matching bounds it: by the MATCHING_* settings
in this environment (model, default, MATCHING_MIN_THRESHOLD /
MATCHING_MAX_THRESHOLD, calibration), and printed with its calibrated
false-match rate.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import secrets
import sys
from pathlib import Path
from typing import Any

from identity_cli.common import operator_session, org_action
from identity_cli.errors import CliError
from identity_runtime.errors import DomainError


def register(orgs_sub: argparse._SubParsersAction) -> None:
    org_action(orgs_sub, "settings", run_show, "an organisation's settings (never a secret)")

    threshold = org_action(
        orgs_sub,
        "set-match-threshold",
        run_set_match_threshold,
        "switch an organisation's face-match threshold (effective at once; audited)",
    )
    value = threshold.add_mutually_exclusive_group(required=True)
    value.add_argument("--threshold", type=float, help="cosine threshold, e.g. 0.5")
    value.add_argument(
        "--default", action="store_true", help="back to the deployment's default threshold"
    )

    secret = org_action(
        orgs_sub,
        "set-evidence-secret",
        run_set_evidence_secret,
        "set, rotate or clear the organisation's Dukcapil evidence secret (audited)",
    )
    how = secret.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--rotate", action="store_true", help="generate a new secret and print it once (base64)"
    )
    how.add_argument("--secret-file", type=Path, help="a file holding the secret (32-256 bytes)")
    how.add_argument("--clear", action="store_true", help="remove the secret")
    secret.add_argument("--keyring", help="KEK keyring file (default: as `identity keys`)")

    default = org_action(
        orgs_sub,
        "set-default-webhook",
        run_set_default_webhook,
        "the endpoint that receives the organisation's own notices (audited)",
    )
    target = default.add_mutually_exclusive_group(required=True)
    target.add_argument("--webhook", help="webhook id (whk_...)")
    target.add_argument("--none", action="store_true", help="clear the default endpoint")


def _bounded(threshold: float | None) -> dict[str, Any]:
    """The threshold (None: the default) as matching describes it, or CliError."""
    from services.matching.contract import threshold_profile

    if threshold is not None and not math.isfinite(threshold):
        raise CliError("match_threshold: must be a finite number")
    try:
        info = threshold_profile().describe(threshold)
    except DomainError as error:
        raise CliError(f"match_threshold: {error.message}") from None
    return {
        "threshold": round(info.threshold, 6),
        "false_match_rate": info.false_match_rate,
        "range": [info.min_threshold, info.max_threshold],
        "calibration_id": info.calibration_id,
    }


def _write(args: argparse.Namespace, work: Any) -> Any:
    try:
        with operator_session(args) as session:
            return work(session)
    except DomainError as error:
        raise CliError(error.message) from None


def run_show(args: argparse.Namespace) -> int:
    from services.kyc_tier import models

    def read(session: Any) -> dict[str, Any]:
        org = session.get(models.Org, args.org)
        if org is None:
            raise CliError(f"no organisation {args.org!r}")
        updated = org.evidence_secret_updated_at
        return {
            "org_id": org.org_id,
            "match_threshold": {
                **_bounded(org.match_threshold),
                "is_default": org.match_threshold is None,
            },
            "dukcapil_evidence_secret_set": org.evidence_secret_sealed is not None,
            "dukcapil_evidence_secret_updated_at": updated.isoformat() if updated else None,
            "default_webhook_id": org.default_webhook_id or "",
        }

    print(json.dumps(_write(args, read), indent=2))
    return 0


def run_set_match_threshold(args: argparse.Namespace) -> int:
    from services.kyc_tier.partners import set_match_threshold

    chosen = None if args.default else args.threshold
    described = _bounded(chosen)
    try:
        old, new = _write(args, lambda s: set_match_threshold(s, args.org, chosen))
    except LookupError:
        raise CliError(f"no organisation {args.org!r}") from None
    print(
        f"{args.org}: match threshold {_threshold(old)} -> {_threshold(new)} "
        f"(false-match rate {described['false_match_rate']:.2g})"
    )
    return 0


def _threshold(value: float | None) -> str:
    return "default" if value is None else f"{value:g}"


def run_set_evidence_secret(args: argparse.Namespace) -> int:
    from identity_cli.keys import kek_keyring
    from identity_crypto.datakeys import DataKeyStore
    from identity_crypto.kms import LocalKms
    from services.kyc_tier import models
    from services.kyc_tier.org_settings import (
        GENERATED_SECRET_BYTES,
        check_secret,
        set_evidence_secret,
    )
    from services.kyc_tier.pii import PiiVault

    secret: bytes | None = None
    if args.rotate:
        secret = secrets.token_bytes(GENERATED_SECRET_BYTES)
    elif args.secret_file is not None:
        try:
            secret = check_secret(args.secret_file.read_bytes().strip())
        except OSError as exc:
            raise CliError(f"cannot read {args.secret_file}: {exc.strerror}") from None
        except DomainError as error:
            raise CliError(error.message) from None
    # Only the organisation's data key is used (the NIK index key is not).
    vault = PiiVault(DataKeyStore(LocalKms(kek_keyring(args)), models.DataKey), "")
    how = "rotated" if args.rotate else "cleared" if args.clear else "set"
    _write(args, lambda s: set_evidence_secret(s, vault, args.org, secret, how))
    print(f"{args.org}: Dukcapil evidence secret {how}", file=sys.stderr)
    if args.rotate and secret is not None:
        print(base64.b64encode(secret).decode())
    return 0


def run_set_default_webhook(args: argparse.Namespace) -> int:
    from services.kyc_tier.org_settings import set_default_webhook

    webhook_id = "" if args.none else args.webhook
    _write(args, lambda s: set_default_webhook(s, args.org, webhook_id))
    print(f"{args.org}: default webhook {webhook_id or 'none'}")
    return 0
