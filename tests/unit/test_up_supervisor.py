"""`identity up`'s supervision: restarts with exponential backoff (capped),
each exit and restart reported, a crash loop given up on, the count reset
once a child stays up. Driven by a fake clock and fake processes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from identity_cli import up
from identity_cli.up import Child, Supervisor


@dataclass
class FakeProcess:
    pid: int
    returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def die(self, code: int = -9) -> None:
        self.returncode = code


@dataclass
class Spawner:
    started: list[FakeProcess] = field(default_factory=list)

    def __call__(self) -> Any:
        process = FakeProcess(pid=1000 + len(self.started))
        self.started.append(process)
        return process


def child(spawner: Spawner) -> Child:
    return Child("matching", "127.0.0.1:1", spawner(), Path("matching.log"), spawner)


def test_a_crashed_child_is_restarted_after_a_growing_capped_backoff() -> None:
    spawner, said = Spawner(), []
    matching = child(spawner)
    supervisor = Supervisor([matching], said.append)
    now = 0.0
    delays = []
    for _ in range(up.MAX_RESTARTS):
        matching.process.die()
        assert supervisor.check(now) is None
        assert matching.restart_at is not None
        delays.append(matching.restart_at - now)
        # Not before the backoff has passed...
        assert supervisor.check(matching.restart_at - 0.01) is None
        assert matching.process.poll() == -9
        # ...then the same command again.
        now = matching.restart_at
        assert supervisor.check(now) is None
        assert matching.process is spawner.started[-1] and matching.process.poll() is None
    assert delays == [
        min(up.RESTART_BACKOFF_CAP_SECONDS, up.RESTART_BACKOFF_SECONDS * 2**n)
        for n in range(up.MAX_RESTARTS)
    ]
    assert delays[1] == 2 * delays[0]
    assert Supervisor.backoff(50) == up.RESTART_BACKOFF_CAP_SECONDS
    assert said[0] == (
        f"matching exited with code -9; restarting in {delays[0]:g}s "
        f"(restart 1 of at most {up.MAX_RESTARTS})"
    )
    assert said[1] == f"matching restarted (pid {spawner.started[1].pid})"
    assert len(said) == 2 * up.MAX_RESTARTS


def test_a_crash_loop_is_given_up_on_with_a_clear_message() -> None:
    spawner, said = Spawner(), []
    matching = child(spawner)
    supervisor = Supervisor([matching], said.append)
    now = 0.0
    for _ in range(up.MAX_RESTARTS):
        matching.process.die(1)
        supervisor.check(now)
        assert matching.restart_at is not None
        now = matching.restart_at
        supervisor.check(now)
    matching.process.die(1)
    assert supervisor.check(now + 0.1) is matching
    assert said[-1] == (
        f"matching exited with code 1 after {up.MAX_RESTARTS} restarts in a row; giving up"
    )
    assert len(spawner.started) == 1 + up.MAX_RESTARTS


def test_a_clean_stop_is_restarted_at_once_and_not_counted_as_a_crash() -> None:
    """An operator's rolling restart (SIGTERM, exit 0) of a child that ran a
    while: restarted at once, the crash count unchanged (black-box probe 7:
    three rolling restarts of the KEK runbook reached "restart 3 of at most
    5"); a clean exit right after starting still counts."""
    spawner, said = Spawner(), []
    matching = child(spawner)
    supervisor = Supervisor([matching], said.append)
    now = 100.0
    for _ in range(up.MAX_RESTARTS + 2):
        now += up.CLEAN_STOP_AFTER_SECONDS
        matching.process.die(0)
        assert supervisor.check(now) is None
        assert matching.process.poll() is None and matching.restart_at is None
        assert matching.restarts == 0
    assert said[-1] == f"matching stopped cleanly; restarted (pid {spawner.started[-1].pid})"
    matching.process.die(0)  # at once: counted, with backoff
    supervisor.check(now + 1)
    assert matching.restart_at == now + 1 + up.RESTART_BACKOFF_SECONDS


def test_a_child_that_stays_up_starts_a_fresh_count() -> None:
    spawner, said = Spawner(), []
    matching = child(spawner)
    supervisor = Supervisor([matching], said.append)
    matching.process.die()
    supervisor.check(0.0)
    assert matching.restart_at is not None
    restarted_at = matching.restart_at
    supervisor.check(restarted_at)
    assert matching.restarts == 1
    supervisor.check(restarted_at + up.STABLE_SECONDS - 1)
    assert matching.restarts == 1
    supervisor.check(restarted_at + up.STABLE_SECONDS)
    assert matching.restarts == 0
    # The next crash waits the first backoff again.
    matching.process.die()
    supervisor.check(restarted_at + up.STABLE_SECONDS + 5)
    assert matching.restart_at == restarted_at + up.STABLE_SECONDS + 5 + up.RESTART_BACKOFF_SECONDS


def test_children_that_run_are_left_alone() -> None:
    spawner, said = Spawner(), []
    children = [child(spawner), child(spawner)]
    supervisor = Supervisor(children, said.append)
    for now in (0.0, 100.0, 1000.0):
        assert supervisor.check(now) is None
    assert said == [] and len(spawner.started) == 2


@dataclass
class StoppingProcess:
    """A child that exits when asked to stop; `events` records, across all
    children, who was signalled and who was waited on, in order."""

    name: str
    events: list[tuple[str, str]]
    returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, signum: int) -> None:
        self.events.append(("stop", self.name))

    def wait(self, timeout: float | None = None) -> int:
        self.events.append(("stopped", self.name))
        self.returncode = 0
        return 0


def test_the_mesh_stops_callers_before_the_services_they_call() -> None:
    """Ctrl-C drains the gateway, then kyc-tier and face-match, then what they
    call (black-box probe 7, D4: every child was signalled at once, so
    liveness stopped under a capture kyc-tier was still finishing)."""
    events: list[tuple[str, str]] = []
    names = [s.name for s in up.mesh.SERVICES] + ["gateway", "prometheus"]
    children = [
        Child(name, "", StoppingProcess(name, events), Path(f"{name}.log"), Spawner())  # type: ignore[arg-type]
        for name in names
    ]
    up._stop_all(children)
    assert sorted(events) == sorted([("stop", n) for n in names] + [("stopped", n) for n in names])

    def when(kind: str, name: str) -> int:
        return events.index((kind, name))

    callers = {"kyc-tier": ["gateway"], "face-match": ["gateway"]}
    for leaf in ("capture-quality", "liveness", "embedding", "matching", "audit"):
        callers[leaf] = ["gateway", "kyc-tier"]
    callers["audit"].append("face-match")
    for callee, calling in callers.items():
        for caller in calling:
            assert when("stopped", caller) < when("stop", callee), (caller, callee)
    assert events[-2:] == [("stop", "prometheus"), ("stopped", "prometheus")]
