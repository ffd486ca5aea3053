"""`identity audit`: verify, export, checkpoint and purge the audit chain (operator commands).

    identity audit verify [--from N] [--anchor SEQ:HMAC] [--file export.jsonl]
                          [--checkpoints FILE] [--checkpoint-public-key PEM]
    identity audit export [--out FILE] [--from N] [--tenant ORG]
    identity audit checkpoint
    identity audit purge --before YYYY-MM-DD --yes
    identity audit redact-erased

`redact-erased` removes the evidence hashes (capture digests) of entries about
customers whose erasure the chain records before the audit service redacted
them itself (services/audit/redaction.py); idempotent, audited.

These read the database directly with the HMAC keyring: --keyring, else
AUDIT_HMAC_KEYRING_FILE, else AUDIT_HMAC_KEYRING, else
<data dir>/secrets/audit-hmac-keyring.json. `verify` exits 0 when the
chain is intact and 1 with the first bad position otherwise.

`verify` also checks the audit service's signed checkpoints (kept outside
the database; services/audit/checkpoints.py): --checkpoints, else
AUDIT_CHECKPOINT_FILE, else <data dir>/audit/checkpoints.jsonl when it
exists; with the Ed25519 public key from --checkpoint-public-key, else
AUDIT_CHECKPOINT_PUBLIC_KEY_FILE, else the private key AUDIT_CHECKPOINT_KEY_FILE,
else <data dir>/secrets/audit-checkpoint-ed25519.pub. A cut tail with the head
rewound is then reported (TAIL_TRUNCATED) with no anchor to supply.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from identity_cli.common import (
    chosen_keyring,
    chosen_url,
    command_group,
    data_dir,
    database_action,
    database_session,
    existing_database_url,
)
from identity_cli.errors import CliError
from identity_crypto.keyring import Keyring

LOCAL_AUDIT_KEYRING = "audit-hmac-keyring.json"


def hmac_keyring(args: argparse.Namespace) -> Keyring:
    return chosen_keyring(args, "AUDIT_HMAC_KEYRING", LOCAL_AUDIT_KEYRING, "audit HMAC keyring")


def utc_date(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date YYYY-MM-DD") from None


def published_anchor(value: str) -> tuple[int, str]:
    sequence, _, mac = value.partition(":")
    if not sequence.strip().isdigit() or not mac.strip():
        raise argparse.ArgumentTypeError(f"{value!r} is not SEQ:HMAC")
    return int(sequence), mac.strip().lower()


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = command_group(subparsers, "audit", "verify, export, checkpoint, purge the audit log")

    verify = database_action(
        sub, "verify", run_verify, "verify the HMAC chain; report the first bad position"
    )
    verify.add_argument("--from", dest="from_sequence", type=int, default=1)
    verify.add_argument(
        "--anchor",
        type=published_anchor,
        action="append",
        default=[],
        help="SEQ:HMAC published earlier; must still be in the chain",
    )
    verify.add_argument(
        "--file", help="verify an export (JSON lines of the whole chain) instead of the database"
    )
    verify.add_argument("--keyring", help="HMAC keyring file")
    verify.add_argument(
        "--checkpoints",
        help="the signed checkpoint file (default: AUDIT_CHECKPOINT_FILE, "
        "else <data dir>/audit/checkpoints.jsonl)",
    )
    verify.add_argument(
        "--checkpoint-public-key",
        help="Ed25519 public key (PEM) of the checkpoints (default: "
        "AUDIT_CHECKPOINT_PUBLIC_KEY_FILE, else AUDIT_CHECKPOINT_KEY_FILE, else the data dir's)",
    )

    export = database_action(
        sub, "export", run_export, "export entries in chain order as JSON lines"
    )
    export.add_argument("--out", default="-", help="file (default: stdout)")
    export.add_argument("--from", dest="from_sequence", type=int, default=1)
    export.add_argument(
        "--tenant",
        help="only this organisation's entries (the chain cannot be verified from those alone)",
    )

    checkpoint = database_action(
        sub, "checkpoint", run_checkpoint, "sign the current head and print it for publication"
    )
    checkpoint.add_argument("--keyring", help="HMAC keyring file")

    redact = database_action(
        sub,
        "redact-erased",
        run_redact_erased,
        "remove erased customers' evidence hashes left in the chain (it still verifies)",
    )
    redact.add_argument("--keyring", help="HMAC keyring file")

    purge = database_action(
        sub, "purge", run_purge, "remove the chain's prefix older than the 7-year retention"
    )
    purge.add_argument(
        "--before",
        type=utc_date,
        required=True,
        help="UTC date (YYYY-MM-DD); entries before it may go",
    )
    purge.add_argument("--yes", action="store_true", help="confirm: the entries are deleted")
    purge.add_argument("--keyring", help="HMAC keyring file")


def run_verify(args: argparse.Namespace) -> int:
    from services.audit.chain import Anchor, read_jsonl, verify_entries

    keyring = hmac_keyring(args)
    anchors = dict(args.anchor)
    if args.file:
        with open(args.file) as handle:
            try:
                entries = list(read_jsonl(handle))
            except (ValueError, KeyError, TypeError) as exc:
                raise CliError(f"{args.file} is not an audit export (JSON lines): {exc}") from None
        start = entries[0].sequence if entries else 1
        anchor = Anchor(start - 1, entries[0].previous_hmac if entries and start > 1 else "")
        report = verify_entries(iter(entries), keyring, anchor, None, anchors)
    else:
        from identity_store.db import Database
        from services.audit.chain import VerifyReport
        from services.audit.log import AuditLog

        database = Database(existing_database_url(args))
        try:
            report = AuditLog(keyring).verify(database.transaction, args.from_sequence)
            if report.intact and anchors:
                # Published anchors outside the database catch a cut tail with a rewound head.
                with database.transaction() as session:
                    from services.audit import models

                    for sequence, mac in sorted(anchors.items()):
                        row = session.get(models.AuditEntry, sequence)
                        if row is None or row.entry_hmac != mac:
                            report = VerifyReport(
                                False,
                                report.entries_checked,
                                sequence,
                                "ENTRY_MISSING" if row is None else "ENTRY_ALTERED",
                            )
                            break
            checked = 0
            if report.intact:
                report, checked = _verify_checkpoints(args, database, report)
        finally:
            database.dispose()
        print(json.dumps({**report.__dict__, "checkpoints_checked": checked}))
        return 0 if report.intact else 1
    print(json.dumps(report.__dict__))
    return 0 if report.intact else 1


def _checkpoint_file(args: argparse.Namespace) -> tuple[Path | None, bool]:
    """The checkpoint file (None: none applies) and whether it was named explicitly."""
    if args.checkpoints:
        return Path(args.checkpoints), True
    if os.environ.get("AUDIT_CHECKPOINT_FILE"):
        return Path(os.environ["AUDIT_CHECKPOINT_FILE"]), True
    from identity_cli.local_secrets import AUDIT_CHECKPOINT_FILE

    if chosen_url(args) is not None:
        # Another database than the data dir's: its checkpoints are not these.
        return None, False
    return data_dir(args) / AUDIT_CHECKPOINT_FILE, False


def _checkpoint_public_key(args: argparse.Namespace) -> Any:
    from identity_cli.local_secrets import AUDIT_CHECKPOINT_PUBLIC_KEY
    from services.audit.checkpoints import load_public_key

    candidates = [
        args.checkpoint_public_key,
        os.environ.get("AUDIT_CHECKPOINT_PUBLIC_KEY_FILE"),
        os.environ.get("AUDIT_CHECKPOINT_KEY_FILE"),
    ]
    named = next((c for c in candidates if c), None)
    path = Path(named) if named else data_dir(args) / "secrets" / AUDIT_CHECKPOINT_PUBLIC_KEY
    if not path.exists():
        raise CliError(
            f"the checkpoints need their Ed25519 public key: {path} does not exist; "
            "pass --checkpoint-public-key"
        )
    try:
        return load_public_key(path)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _verify_checkpoints(args: argparse.Namespace, database: Any, report: Any) -> tuple[Any, int]:
    """The chain's report, or the checkpoints' problem; and how many were checked."""
    from sqlalchemy import func, select

    from services.audit import models
    from services.audit.checkpoints import read_checkpoints, verify_checkpoints
    from services.audit.log import CHAIN_ID

    path, named = _checkpoint_file(args)
    if path is None:
        return report, 0
    if not path.exists():
        if named:
            raise CliError(f"no checkpoint file at {path}")
        return report, 0
    try:
        checkpoints = read_checkpoints(path)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    public_key = _checkpoint_public_key(args)
    with database.transaction() as session:
        head = session.get(models.AuditChainHead, CHAIN_ID)
        purged_through = session.scalar(
            select(func.max(models.AuditCheckpoint.sequence)).where(
                models.AuditCheckpoint.kind == "purge"
            )
        )

        def entry_hmac(sequence: int) -> str | None:
            row = session.get(models.AuditEntry, sequence)
            return row.entry_hmac if row is not None else None

        problem = verify_checkpoints(
            checkpoints,
            public_key,
            head.last_sequence if head is not None else 0,
            entry_hmac,
            purged_through or 0,
        )
    if problem is None:
        return report, len(checkpoints)
    from dataclasses import replace

    return replace(
        problem, entries_checked=report.entries_checked, from_sequence=report.from_sequence
    ), len(checkpoints)


def run_export(args: argparse.Namespace) -> int:
    from identity_store.db import Database
    from services.audit.chain import entry_to_json
    from services.audit.log import AuditLog

    database = Database(existing_database_url(args))
    out = sys.stdout if args.out == "-" else open(args.out, "w")  # noqa: SIM115 - closed below
    count = 0
    try:
        # Export needs no key: it copies entries with their MACs.
        for entry in AuditLog.export(database.transaction, args.from_sequence, args.tenant):
            out.write(json.dumps(entry_to_json(entry), separators=(",", ":")) + "\n")
            count += 1
    finally:
        if out is not sys.stdout:
            out.close()
        database.dispose()
    print(f"exported {count} entries", file=sys.stderr)
    return 0


def run_checkpoint(args: argparse.Namespace) -> int:
    from services.audit.log import AuditLog

    with database_session(args) as session:
        checkpoint = AuditLog(hmac_keyring(args)).checkpoint(session)
    if checkpoint is None:
        print("the chain is empty", file=sys.stderr)
        return 0
    print(
        json.dumps(
            {
                "sequence": checkpoint.sequence,
                "entry_hmac": checkpoint.entry_hmac,
                "anchor": f"{checkpoint.sequence}:{checkpoint.entry_hmac}",
            }
        )
    )
    return 0


def run_redact_erased(args: argparse.Namespace) -> int:
    from services.audit.log import AuditLog

    with database_session(args) as session:
        recorded = AuditLog(hmac_keyring(args)).redact_erased(session)
    print(json.dumps({"customers_redacted": recorded}))
    return 0


def run_purge(args: argparse.Namespace) -> int:
    from identity_store.db import Database
    from services.audit.log import AuditLog

    before = args.before
    if not args.yes:
        print("purge deletes entries; pass --yes to confirm", file=sys.stderr)
        return 2
    database = Database(existing_database_url(args))
    try:
        report = AuditLog(hmac_keyring(args)).purge(database.transaction, before)
    finally:
        database.dispose()
    print(
        json.dumps(
            {
                "purged": report.purged,
                "checkpoint": report.checkpoint.sequence if report.checkpoint else None,
            }
        )
    )
    return 0
