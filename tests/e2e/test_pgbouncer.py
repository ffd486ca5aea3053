"""The end-to-end flows through PgBouncer in transaction pooling mode (the
README's "Connection budget"): the onboarding ladder, step-up, replay
refusals and erasure of tests/e2e/test_onboarding.py run unchanged on a mesh
whose every database connection (migrations included) goes through
PgBouncer, which holds at most SERVER_POOL server connections. Then the helm
test's smoke (`identity smoke`) passes against that mesh.
"""

from __future__ import annotations

import asyncio

import pytest

from identity_cli.schema import migrate_all
from identity_cli.smoke import checks
from tests.e2e.test_onboarding import (  # noqa: F401 - the flows, collected here too
    persona,
    test_erasure_retires_the_face_destroys_the_keys_and_answers,
    test_every_tier_transition_is_a_tier_event_and_an_audit_entry,
    test_persona_climbs_the_ladder_to_premium,
    test_step_up_allows_the_same_person,
    test_step_up_replays_the_same_bundle_and_refuses_its_nonce_or_challenge_reused,
)
from tests.support.gateway import bearer, create_org_and_key
from tests.support.mesh import running_mesh
from tests.support.pgbouncer import SERVER_POOL, pgbouncer_database, server_connections

pytestmark = [pytest.mark.models, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def pgbouncer():
    with pgbouncer_database() as urls:
        yield urls


@pytest.fixture(scope="module")
async def e2e(tmp_path_factory, pgbouncer):
    direct, bouncer = pgbouncer
    # The migrations through PgBouncer too: one transaction each, SET LOCAL timeouts.
    await asyncio.to_thread(migrate_all, bouncer)
    async with running_mesh(tmp_path_factory.mktemp("pgbouncer"), database_url=bouncer) as mesh:
        yield mesh


async def test_the_flows_shared_a_few_server_connections(e2e, persona, pgbouncer) -> None:  # noqa: F811
    direct, _ = pgbouncer
    assert persona["status"]["tier"] == "KYC_TIER_PREMIUM"
    # Six services' pools, each up to 5 connections, behind SERVER_POOL server connections.
    assert 0 < await asyncio.to_thread(server_connections, direct) <= SERVER_POOL


async def test_the_helm_test_smoke_passes_and_fails_on_a_bad_key(e2e) -> None:
    _, _, secret = await asyncio.to_thread(
        create_org_and_key, e2e.database_url, "Smoke", ("public", "internal")
    )
    e2e.client.headers.update(bearer(secret))
    try:
        results = await checks(e2e.client)
        assert [(name, passed) for name, passed, _ in results] == [
            ("health", True),
            ("step-up", True),
        ], results
        e2e.client.headers.update(bearer("idk_not_a_key"))
        failed = await checks(e2e.client)
        assert [passed for _, passed, _ in failed] == [False, False], failed
    finally:
        e2e.client.headers.pop("Authorization", None)
