"""`identity keys`: keyring files, KEK rotation and key usage.

    identity keys add --keyring FILE [--id ID] [--make-primary]   add a fresh 256-bit key
    identity keys set-primary --keyring FILE ID                     choose the key new material uses
    identity keys rotate [--keyring FILE]                           re-wrap every data key under
                                                                    the primary KEK
    identity keys status [--keyring FILE]                           live data keys per KEK

Data keys live in their owners' tables (kyc-tier's `kyc_data_keys`, matching's
`matching_data_keys`, face-match's `fm_data_keys`); rotation and the counts cover
all of them.
    identity keys remove --keyring FILE ID [--kind kek|audit]       drop a key nothing uses any more

The KEK keyring is read from --keyring, else MATCHING_KEK_KEYRING_FILE, else
MATCHING_KEK_KEYRING, else <data dir>/secrets/kek-keyring.json. The audit
HMAC keyring has the same format (see docs/matching-and-audit.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from identity_cli.common import (
    chosen_keyring,
    command_group,
    database_action,
    database_session,
    existing_database_url,
)
from identity_cli.errors import CliError
from identity_crypto.keyring import (
    Keyring,
    KeyringError,
    generate,
    new_key,
    write_keyring_file,
)
from identity_store.db import Database

if TYPE_CHECKING:
    from identity_crypto.datakeys import KeyTable, RotationReport

# The one-machine run's keyring (identity_cli.secrets.read_or_create_keyring).
LOCAL_KEK_KEYRING = "kek-keyring.json"


def kek_keyring(args: argparse.Namespace) -> Keyring:
    return chosen_keyring(args, "MATCHING_KEK_KEYRING", LOCAL_KEK_KEYRING, "KEK keyring")


def _batch_size(value: str) -> int:
    """Data keys re-wrapped per transaction: 1 or more (0 re-wrapped nothing,
    and a negative LIMIT is no limit on SQLite)."""
    try:
        size = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {value!r}") from None
    if size < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not 1 or more")
    return size


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = command_group(subparsers, "keys", "keyrings, KEK rotation, data-key usage")

    add = sub.add_parser("add", help="add a fresh key to a keyring file (created if missing)")
    add.add_argument("--keyring", required=True, help="keyring file")
    add.add_argument("--id", help="key id (default: kek-<UTC timestamp>)")
    add.add_argument(
        "--make-primary",
        action="store_true",
        help="make it the primary at once (see the runbook first)",
    )
    add.set_defaults(handler=run_add)

    primary = sub.add_parser("set-primary", help="make a key of the keyring the primary")
    primary.add_argument("--keyring", required=True)
    primary.add_argument("key_id")
    primary.set_defaults(handler=run_set_primary)

    rotate = database_action(
        sub,
        "rotate",
        run_rotate,
        "re-wrap every live data key under the primary KEK (online, batched)",
    )
    rotate.add_argument("--keyring", help="KEK keyring file")
    rotate.add_argument("--batch-size", type=_batch_size, default=500)

    status = database_action(sub, "status", run_status, "live data keys per KEK id")
    status.add_argument("--keyring", help="KEK keyring file")

    remove = database_action(
        sub, "remove", run_remove, "remove a key that no record needs any more"
    )
    remove.add_argument("--keyring", required=True)
    remove.add_argument(
        "--kind", choices=["kek", "audit"], default="kek", help="what the keyring protects"
    )
    remove.add_argument("key_id")


def run_add(args: argparse.Namespace) -> int:
    path = Path(args.keyring)
    if not path.parent.is_dir():  # a typo in the path is not a folder to make
        raise CliError(f"cannot write keyring file {path}: no folder {path.parent}")
    key_id = args.id or "kek-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if path.exists():
        keyring = Keyring.from_file(path).with_key(
            key_id, new_key(), make_primary=args.make_primary
        )
    else:
        keyring = generate(key_id)
    write_keyring_file(path, keyring)
    print(f"{path}: added {key_id}; primary is {keyring.primary_id}")
    return 0


def run_set_primary(args: argparse.Namespace) -> int:
    path = Path(args.keyring)
    keyring = Keyring.from_file(path).with_primary(args.key_id)
    write_keyring_file(path, keyring)
    print(f"{path}: primary is {keyring.primary_id}")
    return 0


def key_tables() -> dict[str, KeyTable]:
    """Every owner's data-key table, by owner."""
    from services.face_match import models as face_match
    from services.kyc_tier import models as kyc_tier
    from services.matching import models as matching

    return {
        "kyc-tier": kyc_tier.DataKey,
        "matching": matching.DataKey,
        "face-match": face_match.DataKey,
    }


def _sum_counts(counts: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for count in counts:
        for kek_id, n in count.items():
            total[kek_id] = total.get(kek_id, 0) + n
    return total


def run_rotate(args: argparse.Namespace) -> int:
    from identity_crypto.datakeys import rewrap_data_keys
    from identity_crypto.kms import LocalKms

    kms = LocalKms(kek_keyring(args))
    database = Database(existing_database_url(args))
    reports = {}
    try:
        for owner, table in key_tables().items():

            def progress(report: RotationReport, owner: str = owner) -> None:
                print(f"  {owner}: re-wrapped {report.rewrapped} data keys", file=sys.stderr)

            reports[owner] = rewrap_data_keys(
                database.transaction, kms, table, args.batch_size, progress
            )
    finally:
        database.dispose()
    remaining = _sum_counts([r.remaining for r in reports.values()])
    print(
        json.dumps(
            {
                "primary_kek": kms.primary_kek_id(),
                "rewrapped": sum(r.rewrapped for r in reports.values()),
                "remaining": remaining,
            }
        )
    )
    if remaining:
        print(
            "data keys remain under KEKs this keyring does not hold; add those KEKs and run again",
            file=sys.stderr,
        )
        return 1
    return 0


def run_status(args: argparse.Namespace) -> int:
    from identity_crypto.datakeys import kek_usage

    with database_session(args) as session:
        usage = _sum_counts([kek_usage(session, t) for t in key_tables().values()])
    held: tuple[str, ...] = ()
    primary = ""
    try:
        keyring = kek_keyring(args)
        held, primary = keyring.ids(), keyring.primary_id
    except KeyringError:
        if args.keyring:  # named, but unreadable: not an empty keyring
            raise
    print(
        json.dumps({"primary_kek": primary, "keyring": list(held), "live_data_keys_by_kek": usage})
    )
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from identity_crypto.datakeys import kek_usage
    from services.audit import models

    path = Path(args.keyring)
    keyring = Keyring.from_file(path)
    with database_session(args) as session:
        if args.kind == "kek":
            in_use = sum(
                kek_usage(session, table).get(args.key_id, 0) for table in key_tables().values()
            )
        else:
            in_use = (
                session.scalars(
                    select(func.count())
                    .select_from(models.AuditEntry)
                    .where(models.AuditEntry.key_id == args.key_id)
                ).one()
                + session.scalars(
                    select(func.count())
                    .select_from(models.AuditCheckpoint)
                    .where(models.AuditCheckpoint.key_id == args.key_id)
                ).one()
            )
    if in_use:
        print(f"{args.key_id} is still needed by {in_use} records; not removed", file=sys.stderr)
        return 1
    write_keyring_file(path, keyring.without_key(args.key_id))
    print(f"{path}: removed {args.key_id}")
    return 0
