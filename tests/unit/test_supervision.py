"""The supervisor's restart policy, with fake processes and a clock the tests move."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from services.local.children import core
from services.local.places import Places
from services.local.processes import Child, Running
from services.local.scrape_targets import free_port_after
from services.local.supervision import RestartPolicy, Supervisor
from services.metrics import SUPERVISOR_RESTARTS, SUPERVISOR_UP
from services.settings import Settings
from tests.metric_values import value_of

POLICY = RestartPolicy(initial=0.5, maximum=30.0, healthy_after=60.0)
PIDS = itertools.count(1000)


class FakeProcess:
    def __init__(self) -> None:
        self.pid = next(PIDS)
        self.returncode: int | None = None
        self.signals: list[int] = []

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)
        self.returncode = -sig

    def wait(self, timeout: float | None = None) -> int:
        del timeout
        if self.returncode is None:
            self.returncode = 0
        return self.returncode


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def said() -> list[str]:
    return []


@pytest.fixture
def started() -> list[FakeProcess]:
    return []


@pytest.fixture
def supervisor(
    tmp_path: Path, clock: Clock, said: list[str], started: list[FakeProcess]
) -> Supervisor:
    def spawn(argv: list[str], env: dict[str, str], log_path: Path) -> Running:
        del argv, env, log_path
        process = FakeProcess()
        started.append(process)
        return process

    return Supervisor(
        env={},
        places=Places(tmp_path),
        policy=POLICY,
        liveness_timeout=30.0,
        spawn=spawn,
        say=said.append,
        clock=clock,
        wall_clock=clock,
        draw=lambda: 1.0,
    )


def constant(value: float) -> Callable[[], float]:
    return lambda: value


def die(child: Child, code: int = 1) -> None:
    assert isinstance(child.process, FakeProcess)
    child.process.returncode = code


def run_for(supervisor: Supervisor, clock: Clock, seconds: float, step: float = 0.5) -> None:
    end = clock.now + seconds
    while clock.now < end:
        supervisor.check()
        clock.now += step


def test_restart_delays_double_from_the_first_up_to_the_cap() -> None:
    assert [POLICY.delay(n, lambda: 1.0) for n in range(1, 9)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        30.0,
        30.0,
    ]
    assert [POLICY.delay(5, constant(d)) for d in (0.0, 0.5, 1.0)] == [4.0, 6.0, 8.0]


def test_a_child_that_dies_is_started_again_after_the_first_delay(
    supervisor: Supervisor, clock: Clock, started: list[FakeProcess], said: list[str]
) -> None:
    child = Child("relay", ["-m", "services.relay"])
    supervisor.start_child(child)
    clock.now += 10
    die(child, 1)

    supervisor.check()
    clock.now += 0.4
    supervisor.check()
    assert len(started) == 1
    clock.now += 0.1
    supervisor.check()

    assert len(started) == 2
    assert child.pid == started[1].pid
    assert child.restarts == 1
    assert said[0].startswith("relay: exit 1 after 10s; restarting in 0.5s")


def test_failures_in_a_row_wait_longer_each_time_up_to_the_cap(
    supervisor: Supervisor, clock: Clock, started: list[FakeProcess]
) -> None:
    child = Child("projector", ["-m", "services.projector"])
    supervisor.start_child(child)
    waits = []
    for _ in range(9):
        died_at = clock.now
        die(child)
        supervisor.check()
        assert child.next_start is not None
        waits.append(child.next_start - died_at)
        clock.now = child.next_start
        supervisor.check()

    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert len(started) == 10


def test_a_child_that_keeps_failing_is_never_given_up_on_and_the_supervisor_says_so(
    supervisor: Supervisor, clock: Clock, started: list[FakeProcess], said: list[str]
) -> None:
    child = Child("sweeper", ["-m", "services.sweeper"])
    supervisor.start_child(child)
    for _ in range(100):
        die(child)
        run_for(supervisor, clock, 31.0)

    assert len(started) == 101
    assert child.restarts == 100
    assert child.alive()
    assert "keeps failing (100 in a row): retrying every 30s" in said[-2]


def test_a_healthy_minute_forgets_the_failures_before_it(
    supervisor: Supervisor, clock: Clock
) -> None:
    child = Child("engine", ["-m", "services.engine"])
    supervisor.start_child(child)
    for _ in range(6):
        die(child)
        run_for(supervisor, clock, 31.0)
    assert child.failures == 6

    clock.now += 60.0
    die(child)
    supervisor.check()

    assert child.failures == 1
    assert child.next_start == clock.now + 0.5


def test_a_child_whose_heartbeat_stopped_is_killed_then_restarted(
    supervisor: Supervisor, clock: Clock, started: list[FakeProcess], said: list[str]
) -> None:
    child = Child("engine", ["-m", "services.engine"], heartbeat=True)
    supervisor.start_child(child)
    beat = supervisor.heartbeat_path(child)
    beat.write_text(json.dumps({"pid": child.pid, "at": clock.now}))
    clock.now += 29.0
    supervisor.check()
    assert started[0].signals == []

    clock.now += 2.0
    supervisor.check()
    run_for(supervisor, clock, 1.0)

    assert started[0].signals == [signal.SIGKILL]
    assert "engine: no heartbeat for over 30s; killing pid" in said[0]
    assert len(started) == 2


def test_a_fresh_heartbeat_keeps_a_child_alive(
    supervisor: Supervisor, clock: Clock, started: list[FakeProcess]
) -> None:
    child = Child("relay", ["-m", "services.relay"], heartbeat=True)
    supervisor.start_child(child)
    for _ in range(40):
        clock.now += 2.0
        supervisor.heartbeat_path(child).write_text(json.dumps({"pid": child.pid, "at": clock.now}))
        supervisor.check()

    assert started[0].signals == []


def test_the_state_file_lists_each_child_with_pid_restarts_and_last_exit(
    supervisor: Supervisor, clock: Clock, tmp_path: Path
) -> None:
    relay = Child("relay", ["-m", "services.relay"])
    engine = Child("engine", ["-m", "services.engine"])
    supervisor.start_child(relay)
    supervisor.start_child(engine)
    clock.now += 5
    die(relay, 3)
    run_for(supervisor, clock, 1.0)

    state = json.loads((tmp_path / "supervisor.json").read_text())
    children = {c["name"]: c for c in state["children"]}
    assert children["relay"]["pid"] == relay.pid
    assert children["relay"]["restarts"] == 1
    assert children["relay"]["last_exit"]["code"] == 3
    assert children["relay"]["last_exit"]["uptime"] == 5.0
    assert children["engine"]["state"] == "running"
    assert children["engine"]["last_exit"] is None
    assert (tmp_path / "pids" / "relay.pid").read_text() == str(relay.pid)


def test_stopping_signals_every_child_and_restarts_none(
    supervisor: Supervisor, started: list[FakeProcess]
) -> None:
    children = [Child(name, ["-m", name]) for name in ("a", "b", "c")]
    for child in children:
        supervisor.start_child(child)

    supervisor.stop_all(timeout=1)
    supervisor.check()

    assert [p.signals for p in started] == [[signal.SIGTERM]] * 3
    assert len(started) == 3
    assert all(child.state() == "stopped" for child in children)


def test_engines_and_workers_run_as_many_instances_as_the_settings_say() -> None:
    settings = Settings(
        pg_password="pw", engine_instances=2, eur_treasury_instances=3, usdc_chain_instances=1
    )

    names = [child.name for child in core(settings)]

    assert names == [
        "engine-1",
        "engine-2",
        "relay",
        "sweeper",
        "eur-treasury-1",
        "eur-treasury-2",
        "eur-treasury-3",
        "projector",
        "usdc-chain",
        "webhooks",
        "monitor",
    ]


@pytest.fixture
def measured(supervisor: Supervisor) -> Supervisor:
    supervisor.metrics_base_port = free_port_after(20000 + os.getpid() % 20000, set())
    return supervisor


def test_each_child_with_metrics_gets_a_port_of_its_own_and_keeps_it_across_restarts(
    measured: Supervisor, clock: Clock
) -> None:
    relay = Child("relay", ["-m", "services.relay"], metrics=True)
    engine = Child("engine", ["-m", "services.engine"], metrics=True)
    sandbox = Child("bank", ["-m", "services.local.sandbox", "bank"])
    for child in (relay, engine, sandbox):
        measured.start_child(child)
    first = relay.metrics_port
    die(relay)
    run_for(measured, clock, 2)

    assert relay.restarts == 1
    assert relay.metrics_port == first
    assert measured.metrics_base_port is not None
    assert first is not None
    assert first > measured.metrics_base_port
    assert engine.metrics_port not in {None, first}
    assert sandbox.metrics_port is None


def test_the_targets_file_names_the_supervisor_and_every_process_with_metrics(
    measured: Supervisor,
) -> None:
    measured.start_child(Child("relay", ["-m", "services.relay"], metrics=True))
    measured.start_child(Child("gateway", ["-m", "g"], metrics_address="127.0.0.1:8000"))
    measured.start_child(Child("bank", ["-m", "services.local.sandbox", "bank"]))

    targets = json.loads(measured.places.metrics_targets.read_text())

    assert [t["labels"]["process"] for t in targets] == ["supervisor", "relay", "gateway"]
    assert targets[0]["targets"] == [f"127.0.0.1:{measured.metrics_base_port}"]
    assert targets[2]["targets"] == ["127.0.0.1:8000"]


def test_a_restart_is_counted_and_a_child_waiting_for_one_is_down(
    supervisor: Supervisor, clock: Clock
) -> None:
    child = Child("counted-relay", ["-m", "services.relay"])
    supervisor.start_child(child)
    die(child)
    supervisor.check()

    assert value_of(SUPERVISOR_UP, process="counted-relay") == 0
    run_for(supervisor, clock, 2)
    assert (
        value_of(SUPERVISOR_RESTARTS, "otc_supervisor_restarts_total", process="counted-relay") == 1
    )
    assert value_of(SUPERVISOR_UP, process="counted-relay") == 1


def test_a_taken_port_is_skipped() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        assert free_port_after(port - 1, set()) > port
        assert free_port_after(port - 1, {port + 1}) not in {port, port + 1}
