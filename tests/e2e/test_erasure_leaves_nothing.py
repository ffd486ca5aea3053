"""After an erasure, no table of any service holds the customer's personal
data: the mesh on PostgreSQL (one schema for every service), a customer
created with NIK, name, email and phone (with an Idempotency-Key), found by
the console search, through a KTP capture, a liveness capture, a face match
and a step-up; erased; then every column of every row is searched for the
NIK, the name, the email and the phone, as given, normalised and under the
obvious unsalted hashes. The sealed frames are gone too (not merely
unreadable), and so are the captures' digests on the rows kept."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import pytest
import sqlalchemy as sa

from services.kyc_tier import models
from tests.e2e.test_onboarding import KTP_NIK, Partner, card_capture, selfie
from tests.support import TESTDATA
from tests.support.gateway import create_org_and_key
from tests.support.mesh import running_mesh

pytestmark = [pytest.mark.models, pytest.mark.postgres, pytest.mark.slow]

NAME = "Siti Rahayu"
EMAIL = "Siti.Rahayu@mail.example"
PHONE = "+62 812-3456-7890"


def needles() -> dict[str, str]:
    """What must not survive, by what it is."""
    plain = {
        "nik": KTP_NIK,
        "name": NAME.lower(),
        "name_token": "rahayu",
        "email": EMAIL.lower(),
        "phone": "6281234567890",
        "phone_local": "081234567890",
    }
    found = dict(plain)
    for what, text in plain.items():
        for variant in {text, text.upper(), text.title()}:
            for algorithm in ("md5", "sha1", "sha256"):
                digest = hashlib.new(algorithm, variant.encode()).hexdigest()
                found[f"{algorithm}({what}={variant})"] = digest
    return found


def leftovers(database_url: str) -> list[tuple[str, str]]:
    """(table.column, needle) for every needle found in any row."""
    wanted = needles()
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    hits: list[tuple[str, str]] = []
    try:
        with engine.connect() as connection:
            metadata = sa.MetaData()
            metadata.reflect(connection)
            for table in metadata.sorted_tables:
                for row in connection.execute(sa.select(table)).mappings():
                    for column, value in row.items():
                        if value is None:
                            continue
                        if isinstance(value, bytes | memoryview):
                            text = bytes(value).decode("latin-1")
                        elif isinstance(value, dict | list):
                            text = json.dumps(value)
                        else:
                            text = str(value)
                        text = text.lower()
                        hits += [
                            (f"{table.name}.{column}", what)
                            for what, needle in wanted.items()
                            if needle.lower() in text
                        ]
    finally:
        engine.dispose()
    return hits


@pytest.fixture(scope="module")
async def e2e(tmp_path_factory):
    async with running_mesh(tmp_path_factory.mktemp("erasure")) as mesh:
        yield mesh


async def test_an_erased_customer_leaves_no_personal_data_in_any_table(e2e) -> None:
    _, _, secret = await asyncio.to_thread(
        create_org_and_key, e2e.database_url, "Bank Forget", ("public", "internal")
    )
    partner = Partner(e2e, secret)
    created = await partner.client.post(
        "/api/customers",
        json={
            "externalId": "forget-1",
            "fullName": NAME,
            "nik": KTP_NIK,
            "email": EMAIL,
            "phone": PHONE,
        },
        headers={**partner.headers, "Idempotency-Key": "create-forget-1"},
    )
    assert created.status_code == 200, created.text
    customer_id = created.json()["customer"]["customerId"]
    await partner.register_device(customer_id)
    card = (TESTDATA / "ktp" / "ktp_captured.jpg").read_bytes()
    challenge = await partner.challenge(customer_id, "ktp")
    ktp = await partner.api.submit_ktp(
        customer_id,
        challenge["challengeId"],
        card_capture(partner.signer, challenge, card),
        {"nik": KTP_NIK, "fullName": NAME.upper(), "birthDate": "1995-07-01"},
    )
    assert ktp["tier"] == "KYC_TIER_STANDARD", ktp
    live = await partner.liveness(customer_id, selfie("img2.jpg"))
    match = await partner.api.match_face(customer_id, live["verification"]["verificationId"])
    assert match["tier"] == "KYC_TIER_PREMIUM", match
    response, _, _ = await partner.step_up(customer_id, selfie("img4.jpg"))
    assert response.json()["allow"] is True, response.text
    found = await partner.get("/api/identity/search", q="rahayu")
    assert [c["customerId"] for c in found.json()["customers"]] == [customer_id]
    # Everything above is stored somewhere: the scan sees it before the erasure.
    assert {what for _, what in leftovers(e2e.database_url)} >= {"name", "email", "phone"}

    erased = await partner.ok(
        "POST", f"/api/identity/customers/{customer_id}/erase", {"reason": "data_subject_request"}
    )
    assert erased["state"] == "ERASURE_STATE_COMPLETED", erased
    await e2e.drain_audit()

    assert leftovers(e2e.database_url) == []

    def frames(session: Any) -> int:
        bundles = models.CaptureBundle
        count = sa.select(sa.func.count()).where(bundles.customer_id == customer_id)
        return int(session.scalar(count))

    assert await e2e.database.run(frames) == 0

    def digests(session: Any) -> list[Any]:
        """The captures' digests the kept verification and attempt rows still hold."""
        checks, attempts = models.Verification, models.Attempt
        kept = session.execute(
            sa.select(checks.bundle_sha256, checks.input_hashes).where(
                checks.customer_id == customer_id
            )
        ).all()
        tried = session.scalars(
            sa.select(attempts.bundle_sha256).where(attempts.customer_id == customer_id)
        ).all()
        assert kept and tried
        return [d for row in kept for d in row if d] + [d for d in tried if d]

    assert await e2e.database.run(digests) == []
