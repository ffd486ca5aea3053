"""The rest of the data lifecycle on both databases with a controlled clock:
console sessions and WebAuthn challenges are swept a day after they expire
and kept a day before; an organisation's override lengthens a period (never
shortens it) and the sweeper and reads honour it; the audit chain's prefix
past 7 years is purged on schedule behind a signed checkpoint, a legal hold
(a customer's, from kyc-tier's entries, or a whole tenant's) stops it, and
two purges at once remove each entry once."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from identity_cli.main import main as identity
from identity_crypto.keyring import generate, write_keyring_file
from identity_runtime.errors import InvalidArgument
from identity_store.db import Database
from identity_store.retention import DAY, period
from services.audit import models as audit_models
from services.audit.chain import Draft
from services.audit.log import AuditLog
from services.audit.retention import AuditPurgeSweep
from services.kyc_tier import models
from services.kyc_tier import retention_overrides as overrides
from services.kyc_tier.console_models import ConsoleChallenge, ConsoleSession, ConsoleUser
from services.kyc_tier.retention import KycSweeper, readable
from tests.integration.test_retention import NOW, ORG, add_bundle, add_customer, exists
from tests.support import cli_errors

pytestmark = pytest.mark.integration

KEYRING = generate("audit-lifecycle")


@pytest.fixture
def database(database_url: str):
    db = Database(database_url)
    yield db
    db.dispose()


def sweep(db: Database) -> KycSweeper:
    sweeper = KycSweeper(db, lambda: NOW)
    sweeper.sweep()
    return sweeper


# --- console sessions and WebAuthn challenges ------------------------------------


def test_expired_console_sessions_and_challenges_go_a_day_after_expiry(database: Database) -> None:
    add_customer(database)  # the organisation
    with database.transaction() as s:
        s.add(
            ConsoleUser(
                user_id="usr_l",
                org_id=ORG,
                email="a@example.co.id",
                display_name="Analyst",
                roles=["admin"],
                password_hash="x",
            )
        )
        s.flush()
        for session_id, expires, revoked in (
            ("ses_old", NOW - DAY, None),
            ("ses_young", NOW + DAY, None),
            ("ses_signed_out", NOW + DAY, NOW - DAY),
        ):
            s.add(
                ConsoleSession(
                    session_id=session_id,
                    user_id="usr_l",
                    org_id=ORG,
                    token_hash=session_id.ljust(64, "0"),
                    csrf_hash="0" * 64,
                    method="password",
                    expires_at=expires,
                    revoked_at=revoked,
                )
            )
        for ceremony, expires in (("cer_old", NOW - DAY), ("cer_young", NOW + DAY)):
            s.add(
                ConsoleChallenge(
                    ceremony_id=ceremony, purpose="authenticate", challenge="c", expires_at=expires
                )
            )

    sweeper = KycSweeper(database, lambda: NOW)
    summary = sweeper.sweep()

    assert summary[ORG]["console_sessions"] == 2
    assert sweeper.platform_counts == {
        "webauthn_challenges": 1,
        "console_login_throttles": 0,
        "relayed_audit_outbox": 0,
    }
    with database.transaction() as s:
        assert set(s.scalars(select(ConsoleSession.session_id))) == {"ses_young"}
        assert set(s.scalars(select(ConsoleChallenge.ceremony_id))) == {"cer_young"}
    # Idempotent.
    assert KycSweeper(database, lambda: NOW).sweep() == {}


# --- per-organisation overrides --------------------------------------------------


def test_an_override_only_lengthens_and_the_sweeper_and_reads_honour_it(
    database: Database, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    customer = add_customer(database)
    declared = period("step_up_frames")
    longer = declared + timedelta(days=30)
    past_declared = add_bundle(database, customer, "step_up", NOW - declared - DAY)
    past_longer = add_bundle(database, customer, "step_up", NOW - longer - DAY)

    with database.transaction() as s:
        for days, field in ((declared.days - 1, "period_days"), (declared.days, "period_days")):
            with pytest.raises(InvalidArgument, match=field):
                overrides.set_override(s, ORG, "step_up_frames", days, "OJK 12/2024", "system:t")
        with pytest.raises(InvalidArgument, match="data_class"):
            overrides.set_override(s, ORG, "audit_log", 4000, "court order", "system:t")
        with pytest.raises(InvalidArgument, match="basis"):
            overrides.set_override(s, ORG, "step_up_frames", longer.days, " ", "system:t")
    with database.transaction() as s:
        assert s.scalar(select(func.count()).select_from(models.RetentionOverride)) == 0
        overrides.set_override(s, ORG, "step_up_frames", longer.days, "OJK 12/2024", "system:t")

    sweep(database)

    # Past the declared period but within the organisation's: kept and readable.
    assert exists(database, models.CaptureBundle, past_declared)
    assert not exists(database, models.CaptureBundle, past_longer)
    with database.transaction() as s:
        row = s.get(models.CaptureBundle, past_declared)
        assert readable(row, NOW)
        assert not readable(row, NOW + timedelta(days=31))
        audited = s.scalars(
            select(models.AuditOutbox).where(models.AuditOutbox.action == "retention.override_set")
        ).one()
    assert audited.details == {
        "data_class": "step_up_frames",
        "period_days": str(longer.days),
        "previous_days": str(declared.days),
    }

    # Cleared: back to the declared period.
    with database.transaction() as s:
        assert overrides.clear_override(s, ORG, "step_up_frames", "system:t")
    sweep(database)
    assert not exists(database, models.CaptureBundle, past_declared)

    # The same from the command line (the sweeps' count-only log lines dropped).
    capsys.readouterr()
    db = ["--database-url", database_url]
    base = ["retention", "override", "set", "--org", ORG, "--class", "verifications"]
    assert identity([*base, "--days", "4000", "--basis", "POJK 8/2023", *db]) == 0
    assert json.loads(capsys.readouterr().out)["days"] == 4000
    assert identity([*base, "--days", "30", "--basis", "x", *db]) == 2
    assert "may only lengthen verifications" in capsys.readouterr().err
    other = ["retention", "override", "set", "--org", "org_none", "--class", "verifications"]
    assert identity([*other, "--days", "4000", "--basis", "x", *db]) == 2
    assert "no such organisation" in capsys.readouterr().err
    assert identity(["retention", "override", "list", *db]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["org_id"], row["period_days"], row["declared_days"]) == (
        ORG,
        4000,
        period("verifications").days,
    )


# --- the audit chain's scheduled purge ---------------------------------------------


def append(db: Database, at: datetime, *drafts: Draft) -> None:
    with db.transaction() as s:
        AuditLog(KEYRING, clock=lambda: at).append(s, list(drafts))


def entry(
    subject: str = "customer:c1",
    tenant: str = "org_a",
    action: str = "face.match",
    details: dict[str, str] | None = None,
) -> Draft:
    return Draft(tenant, "service:kyc-tier", action, subject, "success", "r", details=details or {})


def purger(db: Database) -> AuditPurgeSweep:
    return AuditPurgeSweep(db, AuditLog(KEYRING), lambda: NOW, batch=2)


def sequences(db: Database) -> list[int]:
    with db.transaction() as s:
        return list(s.scalars(select(audit_models.AuditEntry.sequence).order_by("sequence")))


def test_the_audit_purge_removes_the_prefix_past_7_years_behind_a_checkpoint(
    database: Database,
) -> None:
    window = period("audit_log")
    append(database, NOW - window - 2 * DAY, entry(), entry())  # 1, 2
    append(database, NOW - window - DAY, entry())  # 3: a day past
    append(database, NOW - window + DAY, entry())  # 4: a day before
    append(database, NOW, entry())  # 5

    assert purger(database).sweep() == {"audit_log": 3, "purge_checkpoint": 3}

    assert sequences(database) == [4, 5]
    report = AuditLog(KEYRING).verify(database.transaction)
    assert report.intact and report.from_sequence == 4
    with database.transaction() as s:
        [checkpoint] = s.scalars(select(audit_models.AuditCheckpoint)).all()
    assert (checkpoint.kind, checkpoint.sequence) == ("purge", 3)
    # Nothing more is old enough: no purge, no new checkpoint.
    assert purger(database).sweep() == {"audit_log": 0, "purge_checkpoint": 0}


def test_a_legal_hold_stops_the_audit_purge_before_the_held_entries(database: Database) -> None:
    old = NOW - period("audit_log") - 10 * DAY
    append(database, old, entry("customer:free"))  # 1
    append(database, old, entry("customer:held"))  # 2: held below
    append(database, old, entry("customer:free"))  # 3
    hold = {"hold": "True", "reason": "COURT_ORDER"}
    append(database, NOW - DAY, entry("customer:held", action="customer.legal_hold", details=hold))

    assert purger(database).sweep()["audit_log"] == 1
    assert sequences(database)[:2] == [2, 3]
    # The hold lifted: the rest of the old prefix goes.
    lifted = {"hold": "False", "reason": "COURT_ORDER"}
    append(database, NOW, entry("customer:held", action="customer.legal_hold", details=lifted))
    assert purger(database).sweep()["audit_log"] == 2
    assert AuditLog(KEYRING).verify(database.transaction).intact


def test_a_tenant_hold_from_the_cli_keeps_that_tenants_entries(
    database: Database, database_url: str, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    keyring = tmp_path / "audit.json"
    write_keyring_file(keyring, KEYRING)
    old = NOW - period("audit_log") - 10 * DAY
    append(database, old, entry(tenant="org_b"), entry(tenant="org_a"), entry(tenant="org_b"))
    db = ["--database-url", database_url, "--keyring", str(keyring)]
    hold = ["retention", "audit-hold", "--tenant", "org_a", "--reason", "OJK-INQ-7"]
    assert identity([*hold, "--on", *db]) == 0
    assert json.loads(capsys.readouterr().out)["hold"] is True

    assert purger(database).sweep()["audit_log"] == 1
    assert sequences(database)[0] == 2

    assert identity([*hold, "--off", *db]) == 0
    capsys.readouterr()
    assert purger(database).sweep()["audit_log"] == 2
    assert AuditLog(KEYRING).verify(database.transaction).intact
    # The CLI (a CronJob) runs the same purge, 7 years back from today: nothing left to do.
    assert identity(["retention", "sweep", "--service", "audit", *db]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == {"audit": {"audit_log": 0, "purge_checkpoint": 0}}


@pytest.mark.parametrize(
    "reason",
    [
        "Budi Santoso",
        "Budi Santoso 3273024107950003",
        "OJK 7",
        # No run of 9 contiguous digits, but what the log scrubbers mask.
        "3273-0241-0795-0003",
        "0812.3456.7890",
    ],
)
def test_the_cli_refuses_an_audit_hold_reason_that_is_not_a_code(
    database: Database, database_url: str, tmp_path, capsys: pytest.CaptureFixture[str], reason: str
) -> None:
    """The hold is an entry of the chain, never erased: a name must not reach it."""
    keyring = tmp_path / "audit.json"
    write_keyring_file(keyring, KEYRING)
    hold = ["retention", "audit-hold", "--tenant", "org_a", "--on", "--reason", reason]

    assert identity([*hold, "--database-url", database_url, "--keyring", str(keyring)]) == 2

    [line] = cli_errors(capsys.readouterr().err)
    assert line.startswith("identity retention audit-hold: reason: must be a code")
    assert "Budi" not in line and reason not in line
    assert sequences(database) == []


@pytest.mark.postgres
def test_two_audit_purges_at_once_remove_each_entry_once(postgres_url: str) -> None:
    database = Database(postgres_url)
    old = NOW - period("audit_log") - 10 * DAY
    append(database, old, *[entry() for _ in range(9)])
    append(database, NOW, entry())
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(purger(database).sweep())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(r["audit_log"] for r in results) == 9
    assert sequences(database) == [10]
    assert AuditLog(KEYRING).verify(database.transaction).intact
    database.dispose()
