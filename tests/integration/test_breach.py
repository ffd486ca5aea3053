"""`identity breach`, on both databases: the dry runs count what an incident
exposes per organisation and change nothing; revoke-templates retires and
shreds every face template of one organisation (or all), flags the customers
for re-enrollment (who can then enroll again), is idempotent and audited;
the 72-hour report names the deadline and carries counts only."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from identity_cli.main import main as identity
from identity_crypto.datakeys import DataKeyStore
from identity_crypto.errors import KeyDestroyed
from identity_crypto.keyring import generate
from identity_crypto.kms import LocalKms
from identity_store.db import Database
from services.kyc_tier import customers, models
from services.kyc_tier.mapping import resources
from services.matching import models as matching
from services.matching.contract import EmbeddingContract
from services.matching.enrollments import EnrollmentStore

pytestmark = pytest.mark.integration

CONTRACT = EmbeddingContract("sface-2021dec", "", 128)
NAME = "Siti Rahayu"
EMAIL = "siti@example.co.id"


@pytest.fixture
def database(database_url: str):
    db = Database(database_url)
    yield db
    db.dispose()


@pytest.fixture
def store() -> EnrollmentStore:
    keys = DataKeyStore(LocalKms(generate("kek-breach")), matching.DataKey, cache_size=0)
    return EnrollmentStore(keys, CONTRACT)


def vector(seed: int) -> np.ndarray:
    found = np.random.default_rng(seed).standard_normal(128).astype(np.float32)
    return found / np.linalg.norm(found)


def seed(database: Database, store: EnrollmentStore, org: str, customers: int) -> list[str]:
    """An organisation with customers (name, e-mail) each holding a face template."""
    ids = [f"cus_{org}_{i}" for i in range(customers)]
    with database.transaction() as s:
        s.add(models.Org(org_id=org, name=f"Bank {org}"))
        s.flush()
        for i, customer_id in enumerate(ids):
            s.add(
                models.Customer(
                    customer_id=customer_id,
                    org_id=org,
                    external_id=f"ext-{org}-{i}",
                    full_name=NAME,
                    email=EMAIL,
                )
            )
    for i, customer_id in enumerate(ids):
        with database.transaction() as s:
            store.enroll(s, org, customer_id, "onboarding_selfie", f"ver_{org}_{i}", vector(i))
    return ids


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert identity(list(argv)) == 0
    out = capsys.readouterr().out
    assert NAME not in out and EMAIL not in out and "ext-" not in out
    return json.loads(out[out.index("{") :])


def live_templates(database: Database) -> int:
    with database.transaction() as s:
        return s.scalar(
            select(func.count())
            .select_from(matching.Enrollment)
            .where(matching.Enrollment.retired_at.is_(None))
        )


def audit_actions(database: Database, org: str) -> list[str]:
    with database.transaction() as s:
        rows = s.scalars(
            select(models.AuditOutbox)
            .where(models.AuditOutbox.org_id == org, models.AuditOutbox.action.like("breach.%"))
            .order_by(models.AuditOutbox.id)
        )
        found = list(rows)
    for row in found:
        assert NAME not in str(row.details) and "cus_" not in str(row.details)
    return [row.action for row in found]


def test_the_dry_runs_count_per_organisation_change_nothing_and_refusals_exit_2(
    database: Database, database_url: str, store: EnrollmentStore, capsys
) -> None:
    seed(database, store, "org_a", 3)
    seed(database, store, "org_b", 2)
    db = ["--database-url", database_url]

    assessed = run(capsys, "breach", "assess", "--incident", "INC-1", *db)
    assert assessed["dry_run"] is True
    assert assessed["organisations"]["org_a"] == {
        "customers": 3,
        "customers_with_nik": 0,
        "sealed_captures": 0,
        "customers_with_templates": 3,
        "templates": 3,
    }
    assert assessed["totals"]["templates"] == 5

    planned = run(
        capsys, "breach", "revoke-templates", "--org", "org_b", "--incident", "INC-1",
        "--dry-run", *db,
    )  # fmt: skip
    assert planned["organisations"] == {"org_b": {"customers_with_templates": 2, "templates": 2}}
    assert live_templates(database) == 5
    with database.transaction() as s:
        flagged = s.scalar(
            select(func.count()).where(models.Customer.reenrollment_required_at.is_not(None))
        )
    assert flagged == 0
    assert audit_actions(database, "org_b") == ["breach.assessed", "breach.revocation_planned"]

    # Refusals: exit status 2, one line naming the problem, nothing changed or audited.
    for argv, word in (
        (["revoke-templates", "--org", "org_a", "--incident", "INC"], "--dry-run"),
        (["revoke-templates", "--incident", "INC", "--yes"], "--org"),
        (["revoke-templates", "--all", "--incident", " ", "--yes"], "incident"),
        # Chained into the audit log, never erased: a code, like a legal hold's reason.
        (["assess", "--incident", "Siti Rahayu leak"], "incident: must be a code"),
        (["revoke-templates", "--all", "--incident", "INC-3273024107950003", "--yes"], "code"),
        (["revoke-templates", "--all", "--incident", "I", "--yes", "--batch", "0"], "batch"),
        (["notify", "--incident", "INC", "--detected-at", "yesterday"], "ISO 8601"),
        (["notify", "--incident", "INC", "--detected-at", "2026-11-26T08:00:00"], "time zone"),
    ):
        assert exit_status(["breach", *argv, *db]) == 2, argv
        err = capsys.readouterr().err
        assert word in err, (argv, err)
    assert live_templates(database) == 5
    assert audit_actions(database, "org_b") == ["breach.assessed", "breach.revocation_planned"]


def test_revoke_templates_shreds_retires_flags_and_allows_re_enrollment(
    database: Database, database_url: str, store: EnrollmentStore, capsys
) -> None:
    revoked_ids = seed(database, store, "org_a", 3)
    kept_ids = seed(database, store, "org_b", 2)
    db = ["--database-url", database_url]

    done = run(
        capsys, "breach", "revoke-templates", "--org", "org_a", "--incident", "INC-2",
        "--yes", "--batch", "2", *db,
    )  # fmt: skip
    assert done["organisations"]["org_a"] == {
        "templates_retired": 3,
        "keys_destroyed": 3,
        "customers_flagged": 3,
    }
    with database.transaction() as s:
        rows = s.scalars(select(matching.Enrollment).order_by(matching.Enrollment.customer_id))
        by_org = {}
        for row in rows:
            by_org.setdefault(row.org_id, []).append(row)
        assert all(
            r.retire_reason == "breach" and not r.active and r.sealed_template is None
            for r in by_org["org_a"]
        )
        assert all(r.active and r.retired_at is None for r in by_org["org_b"])
        flagged = set(
            s.scalars(
                select(models.Customer.customer_id).where(
                    models.Customer.reenrollment_required_at.is_not(None)
                )
            )
        )
        assert flagged == set(revoked_ids)
        # The partner sees it on the customer (GET /api/identity/customers/{id}).
        shown = resources.customer(customers.view(s.get(models.Customer, revoked_ids[0])))
        assert shown.HasField("reenrollment_required_at")
        other = resources.customer(customers.view(s.get(models.Customer, kept_ids[0])))
        assert not other.HasField("reenrollment_required_at")
        # The old key is shredded: nothing sealed under it opens any more.
        old_key = s.get(matching.DataKey, by_org["org_a"][0].data_key_id)
        assert old_key.wrapped_key is None and old_key.destroyed_at is not None
        with pytest.raises(KeyDestroyed):
            store.keys.open_key(old_key)
        # The other organisation's references still open.
        assert store.active_reference(s, "org_b", kept_ids[0]).vector @ vector(0) > 0.999
    assert audit_actions(database, "org_a") == ["breach.templates_revoked"]
    assert audit_actions(database, "org_b") == []

    # The flagged customer enrolls again, under a new key.
    with database.transaction() as s:
        store.enroll(s, "org_a", revoked_ids[0], "onboarding_selfie", "ver_new", vector(7))
    with database.transaction() as s:
        assert store.active_reference(s, "org_a", revoked_ids[0]).vector @ vector(7) > 0.999

    # Again: only the new enrollment is live; the platform-wide run takes it and org_b's.
    again = run(capsys, "breach", "revoke-templates", "--all", "--incident", "INC-2", "--yes", *db)
    assert again["totals"]["templates_retired"] == 3
    assert live_templates(database) == 0
    nothing = run(
        capsys, "breach", "revoke-templates", "--all", "--incident", "INC-2", "--yes", *db
    )
    assert nothing["organisations"] == {}


def exit_status(argv: list[str]) -> int:
    """The command's status, whether argparse (SystemExit) or the command refused."""
    try:
        return identity(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_the_72_hour_report_carries_counts_and_the_deadline(
    database: Database, database_url: str, store: EnrollmentStore, capsys, tmp_path: Path
) -> None:
    seed(database, store, "org_a", 2)
    listing = tmp_path / "affected.csv"
    db = ["--database-url", database_url]
    argv = ["breach", "notify", "--incident", "INC-3", "--detected-at", "2026-11-26T08:00:00Z"]
    assert identity([*argv, "--customers-file", str(listing), *db]) == 0
    markdown = capsys.readouterr().out
    assert "Notify by (72 hours, UU PDP art. 46): 2026-11-29T08:00:00+00:00" in markdown
    assert "| org_a | 2 | 0 | 0 | 2 |" in markdown
    assert "face templates" in markdown
    assert "Affected customers listed: 2" in markdown
    assert NAME not in markdown and EMAIL not in markdown and "cus_" not in markdown
    # The list goes to the operator's file only, readable by them alone.
    assert stat.S_IMODE(listing.stat().st_mode) == 0o600
    lines = listing.read_text().splitlines()
    assert lines[0] == "org_id,customer_id,external_id" and len(lines) == 3
    assert NAME not in listing.read_text()

    document = run(capsys, *argv, "--format", "json", *db)
    assert document["notify_by"] == "2026-11-29T08:00:00+00:00"
    assert document["totals"]["templates"] == 2
    assert audit_actions(database, "org_a") == ["breach.notification_prepared"] * 2
    assert datetime.fromisoformat(document["detected_at"]) == datetime(2026, 11, 26, 8, tzinfo=UTC)
