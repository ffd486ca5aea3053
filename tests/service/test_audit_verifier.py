"""The audit service verifies its own chain periodically and counts each
pass in identity_audit_chain_verifications_total (the counter the
IdentityAuditChainBroken alert reads): a real server, real tampering in
the database. Passes are driven by calling the loop's pass directly."""

from __future__ import annotations

import asyncio

import pytest
import structlog
from prometheus_client import REGISTRY

from services.audit.bootstrap import AuditCore
from services.audit.service import SPEC as AUDIT
from services.audit.verifier import ChainVerifier
from tests.service.test_audit import Client, env, execute, request
from tests.support import start_service

# Long enough that only the start-up pass and the test's own passes run.
HOUR = "3600"


def counted(result: str) -> float:
    value = REGISTRY.get_sample_value(
        "identity_audit_chain_verifications_total", {"result": result}
    )
    return value or 0.0


def counts() -> tuple[float, float]:
    return counted("intact"), counted("broken")


def verifier_of(server) -> ChainVerifier:
    core = server.core
    assert isinstance(core, AuditCore) and core.verifier is not None
    return core.verifier


@pytest.fixture
async def verifying_service(database_url: str):
    before = counts()
    server = await start_service(
        AUDIT,
        {
            **env(database_url),
            "AUDIT_VERIFY_INTERVAL_SECONDS": HOUR,
            "AUDIT_VERIFY_FULL_INTERVAL_SECONDS": HOUR,
        },
    )
    verifier = verifier_of(server)
    # The loop's first pass runs at start-up, on the empty chain.
    await asyncio.wait_for(verifier.passed.wait(), 30)
    assert counts() == (before[0] + 1, before[1])
    yield server, database_url, verifier
    await server.stop(0)


async def test_an_intact_chain_counts_intact(verifying_service) -> None:
    server, _, verifier = verifying_service
    async with Client(server) as client:
        for i in range(1, 8):
            await client.append(request(i))
    before = counts()
    with structlog.testing.capture_logs() as logged:
        report = await verifier.verify_once()
    assert (report.intact, report.entries_checked, report.last_sequence) == (True, 7, 7)
    assert counts() == (before[0] + 1, before[1])
    assert [e for e in logged if e["log_level"] == "error"] == []


async def test_an_altered_entry_counts_broken_logs_its_sequence_and_appends_go_on(
    verifying_service,
) -> None:
    server, url, verifier = verifying_service
    async with Client(server) as client:
        for i in range(1, 11):
            await client.append(request(i))
        execute(url, "UPDATE audit_entries SET outcome = 'denied' WHERE sequence = 4")
        before = counts()
        with structlog.testing.capture_logs() as logged:
            report = await verifier.verify_once()
        assert (report.intact, report.first_bad_sequence, report.problem) == (
            False,
            4,
            "ENTRY_ALTERED",
        )
        assert counts() == (before[0], before[1] + 1)
        errors = [e for e in logged if e["log_level"] == "error"]
        # One line: the sequence and the problem code, nothing of the entry.
        assert errors == [
            {
                "event": "audit chain broken",
                "sequence": 4,
                "problem": "ENTRY_ALTERED",
                "log_level": "error",
            }
        ]
        # The service goes on serving; the break is counted again on every pass.
        appended = await client.append(request(11))
        assert appended.sequence == 11
        again = await verifier.verify_once()
    assert (again.intact, again.first_bad_sequence) == (False, 4)
    assert counts() == (before[0], before[1] + 2)


async def test_a_cut_tail_with_a_rewound_head_counts_broken(verifying_service) -> None:
    server, url, verifier = verifying_service
    async with Client(server) as client:
        for i in range(1, 11):
            await client.append(request(i))
    assert (await verifier.verify_once()).intact
    # The newest entries deleted and the head rewound: the rest still links.
    chain = [
        "DELETE FROM audit_entries WHERE sequence >= 8",
        "UPDATE audit_chain_head SET last_sequence = 7,"
        " last_hmac = (SELECT entry_hmac FROM audit_entries WHERE sequence = 7)",
    ]
    execute(url, *chain)
    before = counts()
    report = await verifier.verify_once()
    assert (report.intact, report.first_bad_sequence, report.problem) == (
        False,
        8,
        "TAIL_TRUNCATED",
    )
    # A full pass (after a break every pass is one) still reports it.
    again = await verifier.verify_once()
    assert (again.intact, again.first_bad_sequence, again.problem) == (False, 8, "TAIL_TRUNCATED")
    assert counts() == (before[0], before[1] + 2)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_passes_are_incremental_with_a_full_pass_every_full_interval(
    verifying_service,
) -> None:
    server, url, running = verifying_service
    clock = Clock()
    verifier = ChainVerifier(running.trail, 3600, 600, clock=clock)
    async with Client(server) as client:
        for i in range(1, 11):
            await client.append(request(i))
        first = await verifier.verify_once()  # the first pass is a full one
        for i in range(11, 16):
            await client.append(request(i))
        clock.now = 300
        second = await verifier.verify_once()
    assert (first.intact, first.from_sequence, first.entries_checked) == (True, 1, 10)
    assert (second.intact, second.from_sequence, second.entries_checked) == (True, 11, 5)
    # An edit of an entry already verified: incremental passes do not re-read it ...
    execute(url, "UPDATE audit_entries SET outcome = 'denied' WHERE sequence = 3")
    clock.now = 599
    assert (await verifier.verify_once()).intact
    # ... the next full pass finds it.
    clock.now = 600
    report = await verifier.verify_once()
    assert (report.intact, report.from_sequence, report.first_bad_sequence, report.problem) == (
        False,
        1,
        3,
        "ENTRY_ALTERED",
    )


async def test_interval_zero_runs_no_verification(database_url: str) -> None:
    before = counts()
    server = await start_service(AUDIT, {**env(database_url), "AUDIT_VERIFY_INTERVAL_SECONDS": "0"})
    try:
        core = server.core
        assert isinstance(core, AuditCore) and core.verifier is None
    finally:
        await server.stop(0)
    assert counts() == before
