"""Retention sweeps on both databases with a controlled clock: each data class
is gone one day after its period and still there one day before; a legal hold
keeps it; an erased customer's sealed frames go at once; two sweepers running
at once delete each row once; the run's audit entry holds counts only."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from identity_store.db import Database
from identity_store.retention import DAY, RETENTION, delete_in_batches, period
from services.kyc_tier import models
from services.kyc_tier.retention import KycSweeper, readable
from services.liveness.models import Challenge, UsedNonce
from services.liveness.retention import LivenessSweeper
from services.matching.retention import MatchingSweeper

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
ORG = "org_ret"
_ids = itertools.count()


@pytest.fixture
def database(database_url: str):
    db = Database(database_url)
    yield db
    db.dispose()


def nid(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}"


def add_customer(db: Database, *, held: bool = False, status: str = "active") -> str:
    customer_id = nid("cus")
    with db.transaction() as s:
        if s.get(models.Org, ORG) is None:
            s.add(models.Org(org_id=ORG, name="Retention test"))
            s.flush()
            s.add(
                models.DataKey(
                    key_id="key_ret", org_id=ORG, purpose="bundle", kek_id="test", wrapped_key=b"k"
                )
            )
            s.flush()
        s.add(
            models.Customer(
                customer_id=customer_id,
                org_id=ORG,
                external_id=customer_id,
                status=status,
                legal_hold_since=NOW if held else None,
                legal_hold_reason="COURT_ORDER" if held else None,
            )
        )
    return customer_id


def add_verification(db: Database, customer_id: str, created_at: datetime) -> str:
    verification_id = nid("ver")
    with db.transaction() as s:
        s.add(
            models.Verification(
                verification_id=verification_id,
                org_id=ORG,
                customer_id=customer_id,
                kind="face_liveness",
                outcome="passed",
                created_at=created_at,
            )
        )
    return verification_id


def add_bundle(db: Database, customer_id: str, retention: str, created_at: datetime) -> str:
    verification_id = add_verification(db, customer_id, created_at)
    bundle_id = nid("bun")
    with db.transaction() as s:
        s.add(
            models.CaptureBundle(
                bundle_id=bundle_id,
                org_id=ORG,
                customer_id=customer_id,
                verification_id=verification_id,
                retention_class=retention,
                sha256="0" * 64,
                data_key_id="key_ret",
                sealed_payload=b"sealed",
                created_at=created_at,
                expires_at=created_at + timedelta(days=1),
            )
        )
    return bundle_id


def exists(db: Database, table: type, key: str) -> bool:
    with db.transaction() as s:
        return s.get(table, key) is not None


def sweeper(db: Database, batch: int = 1000) -> KycSweeper:
    return KycSweeper(db, lambda: NOW, batch=batch)


@pytest.mark.parametrize(
    ("retention", "name"), [("onboarding", "onboarding_frames"), ("step_up", "step_up_frames")]
)
def test_frames_go_a_day_after_their_period_and_stay_a_day_before(
    database: Database, retention: str, name: str
) -> None:
    customer = add_customer(database)
    old = add_bundle(database, customer, retention, NOW - period(name) - DAY)
    young = add_bundle(database, customer, retention, NOW - period(name) + DAY)

    summary = sweeper(database).sweep()

    assert not exists(database, models.CaptureBundle, old)
    assert exists(database, models.CaptureBundle, young)
    assert summary[ORG][name] == 1
    # Idempotent: a second run finds nothing.
    assert sweeper(database).sweep() == {}


def test_verification_rows_go_after_seven_years_with_their_dependents(
    database: Database,
) -> None:
    customer = add_customer(database)
    old = add_verification(database, customer, NOW - period("verifications") - DAY)
    young = add_verification(database, customer, NOW - period("verifications") + DAY)
    with database.transaction() as s:
        s.add(
            models.ReviewItem(
                review_id=nid("rev"),
                org_id=ORG,
                customer_id=customer,
                verification_id=old,
                kind="face_match",
            )
        )

    summary = sweeper(database).sweep()

    assert not exists(database, models.Verification, old)
    assert exists(database, models.Verification, young)
    assert summary[ORG]["verifications"] == 1
    with database.transaction() as s:
        assert s.scalar(select(func.count()).select_from(models.ReviewItem)) == 0


def test_a_legal_hold_keeps_everything(database: Database) -> None:
    customer = add_customer(database, held=True)
    bundle = add_bundle(database, customer, "step_up", NOW - 10 * period("verifications"))
    verification = add_verification(database, customer, NOW - 2 * period("verifications"))

    assert sweeper(database).sweep() == {}

    assert exists(database, models.CaptureBundle, bundle)
    assert exists(database, models.Verification, verification)


def test_an_erased_customers_sealed_frames_go_at_once(database: Database) -> None:
    erased = add_customer(database, status="erased")
    active = add_customer(database)
    gone = add_bundle(database, erased, "onboarding", NOW - DAY)
    kept = add_bundle(database, active, "onboarding", NOW - DAY)

    summary = sweeper(database).sweep()

    assert not exists(database, models.CaptureBundle, gone)
    assert exists(database, models.CaptureBundle, kept)
    assert summary[ORG]["erased_frames"] == 1


def test_the_run_ends_with_an_audit_entry_of_counts_only(database: Database) -> None:
    customer = add_customer(database)
    add_bundle(database, customer, "step_up", NOW - period("step_up_frames") - DAY)

    sweeper(database).sweep()

    with database.transaction() as s:
        entries = list(
            s.scalars(
                select(models.AuditOutbox).where(models.AuditOutbox.action == "retention.sweep")
            )
        )
    assert len(entries) == 1
    assert entries[0].org_id == ORG
    assert entries[0].subject == f"org:{ORG}"
    assert entries[0].details == {
        "onboarding_frames": "0",
        "step_up_frames": "1",
        "erased_frames": "0",
        "verifications": "0",
        "console_sessions": "0",
    }
    assert customer not in str(entries[0].details)


def add_outbox_row(db: Database, delivered_at: datetime | None, rejected: str | None = None) -> int:
    with db.transaction() as s:
        row = models.AuditOutbox(
            org_id=ORG,
            actor="service:kyc-tier",
            action="ktp.capture",
            subject="customer:cus_x",
            outcome="success",
            evidence_hashes={"bundle": "ab" * 32},
            delivered_at=delivered_at,
            rejected_reason=rejected,
        )
        s.add(row)
        s.flush()
        return row.id


def test_relayed_audit_outbox_rows_go_a_day_after_delivery_but_never_the_newest(
    database: Database,
) -> None:
    """The chain holds the entry once relayed: kyc-tier's copy (and the capture
    digests it carries) goes after the declared day. Pending and rejected rows
    stay; so does the newest row, whose id SQLite would otherwise give again
    (the relay keys an entry by its outbox id)."""
    add_customer(database)  # the organisation
    day = period("relayed_audit_outbox")
    relayed_long_ago = add_outbox_row(database, NOW - day - DAY)
    relayed_just_now = add_outbox_row(database, NOW - day + DAY)
    pending = add_outbox_row(database, None)
    rejected = add_outbox_row(database, None, rejected="INVALID_FIELD")
    newest_relayed = add_outbox_row(database, NOW - day - DAY)

    sweeper = KycSweeper(database, lambda: NOW)
    sweeper.sweep()

    assert sweeper.platform_counts["relayed_audit_outbox"] == 1
    with database.transaction() as s:
        left = set(s.scalars(select(models.AuditOutbox.id)))
    assert relayed_long_ago not in left
    assert {relayed_just_now, pending, rejected, newest_relayed} <= left
    # Counted in the log only: no audit entry of it (which would be a row to sweep).
    with database.transaction() as s:
        summaries = s.scalar(
            select(func.count()).where(models.AuditOutbox.action == "retention.sweep")
        )
    assert summaries == 0
    # Idempotent.
    sweeper.sweep()
    assert sweeper.platform_counts["relayed_audit_outbox"] == 0


def test_reads_refuse_a_bundle_past_its_period() -> None:
    created = NOW - period("step_up_frames")
    row = models.CaptureBundle(retention_class="step_up", created_at=created)
    assert readable(row, NOW - timedelta(seconds=1))
    assert not readable(row, NOW)


async def test_two_sweepers_at_once_delete_each_row_once(database: Database) -> None:
    customer = add_customer(database)
    for _ in range(40):
        add_bundle(database, customer, "step_up", NOW - period("step_up_frames") - DAY)

    first, second = await asyncio.gather(
        asyncio.to_thread(sweeper(database, batch=3).sweep),
        asyncio.to_thread(sweeper(database, batch=3).sweep),
    )

    swept = first.get(ORG, {}).get("step_up_frames", 0) + second.get(ORG, {}).get(
        "step_up_frames", 0
    )
    assert swept == 40
    with database.transaction() as s:
        assert s.scalar(select(func.count()).select_from(models.CaptureBundle)) == 0


def test_liveness_purges_expired_challenges_and_nonces(database: Database) -> None:
    window = timedelta(hours=24)
    with database.transaction() as s:
        for challenge_id, expires in (
            ("chl_old", NOW - window - DAY),
            ("chl_young", NOW - window + DAY),
        ):
            s.add(
                Challenge(
                    challenge_id=challenge_id,
                    org_id=ORG,
                    customer_id="cus_1",
                    purpose="step_up",
                    sequence=["#ff0000"],
                    flash_duration_ms=100,
                    issued_at=expires - timedelta(minutes=5),
                    expires_at=expires,
                )
            )
        for nonce, expires in (("nonce-old-1", NOW - DAY), ("nonce-young", NOW + DAY)):
            # The same nonce on another device stays until its own expiry.
            for device, shift in (("dev-a", timedelta(0)), ("dev-b", 2 * DAY)):
                s.add(
                    UsedNonce(
                        org_id=ORG,
                        device_id=device,
                        nonce=nonce,
                        bundle_sha256="0" * 64,
                        seen_at=NOW - 2 * DAY,
                        expires_at=expires + shift,
                    )
                )

    counts = LivenessSweeper(database, lambda: NOW, window, batch=1).sweep()

    assert counts == {"challenges": 1, "nonces": 1}
    with database.transaction() as s:
        assert set(s.scalars(select(Challenge.challenge_id))) == {"chl_young"}
        left = {tuple(r) for r in s.execute(select(UsedNonce.device_id, UsedNonce.nonce))}
    assert left == {("dev-b", "nonce-old-1"), ("dev-a", "nonce-young"), ("dev-b", "nonce-young")}


def test_batches_are_bounded(database: Database) -> None:
    with database.transaction() as s:
        for i in range(25):
            s.add(
                UsedNonce(
                    org_id=ORG,
                    device_id="dev",
                    nonce=f"nonce-{i:04d}",
                    bundle_sha256="0" * 64,
                    seen_at=NOW - 2 * DAY,
                    expires_at=NOW - DAY,
                )
            )
    stats = delete_in_batches(
        database, UsedNonce.nonce, lambda: UsedNonce.expires_at <= NOW, 10, lambda: 0.0
    )
    assert (stats.rows, stats.batches) == (25, 3)
    with pytest.raises(ValueError, match="batch"):
        delete_in_batches(database, UsedNonce.nonce, lambda: UsedNonce.expires_at <= NOW, 0, float)


def test_every_period_in_the_table_is_the_product_briefs() -> None:
    assert period("onboarding_frames") == timedelta(days=3 * 365)
    assert period("step_up_frames") == timedelta(days=90)
    assert period("verifications") == period("audit_log") == timedelta(days=7 * 365 + 2)
    assert RETENTION["challenges"].period is None
    with pytest.raises(KeyError):
        period("nonces")


def test_matching_purges_erased_enrollments_after_their_window(database: Database) -> None:
    from services.matching.models import DataKey as MatchingKey
    from services.matching.models import Enrollment

    window = period("erased_enrollments")
    with database.transaction() as s:
        s.add(
            MatchingKey(key_id="mkey", org_id=ORG, purpose="template", kek_id="t", wrapped_key=b"k")
        )
        s.flush()
        for enrollment_id, reason, retired in (
            ("enr_old", "erasure", NOW - window - DAY),
            ("enr_young", "erasure", NOW - window + DAY),
            ("enr_replaced", "superseded", NOW - 2 * window),
            ("enr_active", None, None),
        ):
            s.add(
                Enrollment(
                    enrollment_id=enrollment_id,
                    org_id=ORG,
                    customer_id="cus_m",
                    source="dukcapil",
                    source_priority=1,
                    model_id="m",
                    model_version="1",
                    dimension=512,
                    template_format="fp16",
                    sealed_template=None if reason == "erasure" else b"t",
                    data_key_id="mkey",
                    active=reason is None,
                    retired_at=retired,
                    retire_reason=reason,
                )
            )

    counts = MatchingSweeper(database, lambda: NOW, batch=1).sweep()

    assert counts == {"erased_enrollments": 1}
    with database.transaction() as s:
        left = set(s.scalars(select(Enrollment.enrollment_id)))
    assert left == {"enr_young", "enr_replaced", "enr_active"}


def test_the_cli_sweeps_now_and_prints_counts_only(
    database: Database, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    import structlog

    from identity_cli.main import main

    customer = add_customer(database, status="erased")
    add_bundle(database, customer, "onboarding", datetime.now(UTC) - DAY)

    # As in a fresh process (structlog's default writes to stdout).
    structlog.reset_defaults()
    assert main(["retention", "sweep", "--database-url", database_url]) == 0
    # Stdout is the summary alone, JSON (`identity retention sweep | jq`): the
    # sweepers' count-only log lines go to stderr (black-box probe 7, D10).
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert "retention sweep" in captured.err
    assert printed["kyc-tier"][ORG]["erased_frames"] == 1
    assert printed["liveness"] == {"challenges": 0, "nonces": 0}
    assert printed["matching"] == {"erased_enrollments": 0}
    assert customer not in json.dumps(printed)
    with database.transaction() as s:
        assert s.scalar(select(func.count()).select_from(models.CaptureBundle)) == 0

    # Refusals: one line, exit status 2.
    assert main(["retention", "sweep", "--batch", "0", "--database-url", database_url]) == 2
    assert "batch" in capsys.readouterr().err


def test_the_cli_shows_the_declared_table(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from identity_cli.main import main

    assert main(["retention", "show"]) == 0
    shown = {row["class"]: row for row in json.loads(capsys.readouterr().out)}
    assert shown["step_up_frames"]["period_days"] == 90
    assert shown["onboarding_frames"]["period_days"] == 3 * 365
    assert shown["nonces"]["period_days"] is None
    assert set(shown) == set(RETENTION)
