"""`identity pdp record-of-processing`: every declared data class has its
purpose, basis, processors, recipients, retention and regions; an
organisation's export applies its longer periods; JSON and CSV agree."""

from __future__ import annotations

import csv
import io
import json

import pytest

from identity_cli.main import main as identity
from identity_store.db import Database
from identity_store.processing import ACTIVITIES
from identity_store.retention import RETENTION, period
from services.kyc_tier import retention_overrides
from tests.integration.test_retention import ORG, add_customer

pytestmark = pytest.mark.integration


def test_every_declared_class_has_a_processing_activity() -> None:
    assert set(ACTIVITIES) == set(RETENTION)
    for activity in ACTIVITIES.values():
        assert activity.purpose and activity.legal_basis and activity.categories
        assert activity.processors


def test_the_platform_record_as_json_and_csv(capsys: pytest.CaptureFixture[str]) -> None:
    assert identity(["pdp", "record-of-processing", "--regions", "id-jkt-1,id-sby-1"]) == 0
    document = json.loads(capsys.readouterr().out)
    rows = {row["data_class"]: row for row in document["activities"]}
    assert rows["step_up_frames"]["retention_days"] == 90
    assert rows["step_up_frames"]["specific_personal_data"] is True
    assert rows["face_templates"]["processors"] == ["embedding", "matching"]
    assert rows["device_keys"]["processors"] == ["liveness"]
    assert rows["device_keys"]["retention_basis"] == "while the customer exists; deleted on erasure"
    assert rows["nonces"]["retention_days"] is None
    assert all(row["regions"] == ["id-jkt-1", "id-sby-1"] for row in rows.values())

    assert identity(["pdp", "record-of-processing", "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {row["data_class"] for row in table} == set(rows)
    audit = next(row for row in table if row["data_class"] == "audit_log")
    assert audit["retention_days"] == str(period("audit_log").days)
    assert audit["regions"] == "id-jkt-1"

    assert identity(["pdp", "record-of-processing", "--regions", "ap-southeast-1"]) == 2
    assert "Indonesian regions" in capsys.readouterr().err


def test_an_organisations_record_applies_its_longer_periods(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    database = Database(database_url)
    add_customer(database)
    with database.transaction() as s:
        retention_overrides.set_override(s, ORG, "onboarding_frames", 2000, "POJK", "system:t")
    database.dispose()
    argv = ["pdp", "record-of-processing", "--org", ORG, "--database-url", database_url]
    assert identity(argv) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["controller"]["org_id"] == ORG
    rows = {row["data_class"]: row for row in document["activities"]}
    assert rows["onboarding_frames"]["retention_days"] == 2000
    assert rows["step_up_frames"]["retention_days"] == 90
    missing = ["pdp", "record-of-processing", "--org", "org_none", "--database-url", database_url]
    assert identity(missing) == 2
    assert "no such organisation" in capsys.readouterr().err
