"""The supervisor as an operator meets it: `deploy/local/down` from another shell stops a
foreground run and a detached one with every child, a detached system is supervised (a killed
process comes back), and `deploy/local/status` lists each process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.local.places import Places, read_state, supervisor_pid
from services.settings import Settings
from tests.conftest import unique_name
from tests.e2e.conftest import system_settings
from tests.infra import kill_quietly, pids_alive
from tests.support import LOGS, ROOT, Process, eventually

pytestmark = pytest.mark.e2e

STACK = ROOT / "deploy" / "local" / "stack.py"
EXPECTED = {
    "provider",
    "bank",
    "chain",
    "engine",
    "relay",
    "sweeper",
    "eur-treasury",
    "projector",
    "usdc-chain",
    "webhooks",
    "monitor",
    "gateway",
}


@pytest.fixture
async def own_settings(stack_settings: Settings) -> AsyncIterator[Settings]:
    async with system_settings(stack_settings, "sup") as settings:
        yield settings


@pytest.fixture
def places() -> Places:
    return Places(LOGS / unique_name("supervised"))


def env_of(settings: Settings) -> dict[str, str]:
    return {**os.environ, **settings.to_env(), "PYTHONUNBUFFERED": "1"}


def stack(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """`deploy/local/stack.py ARGS`, as from another shell."""
    return subprocess.run(  # noqa: S603 - our own script, fixed interpreter
        [sys.executable, str(STACK), *args],
        env=env_of(settings),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def running_pids(places: Places) -> dict[str, int]:
    state = read_state(places)
    assert state is not None
    return {c["name"]: c["pid"] for c in state["children"] if c["pid"] is not None}


def status(settings: Settings, places: Places) -> dict[str, Any]:
    found = stack(settings, "status", "--json", "--state-dir", str(places.root))
    report: dict[str, Any] = json.loads(found.stdout)
    return report


def listing(pids: dict[str, int]) -> str:
    return ", ".join(f"{name} {pid}" for name, pid in sorted(pids.items()))


async def test_down_from_another_shell_stops_a_foreground_run_and_every_child(
    own_settings: Settings, places: Places
) -> None:
    supervisor = Process(
        "services.local.supervisor",
        own_settings,
        "--no-demo",
        "--state-dir",
        str(places.root),
        name="supervisor",
    ).start()
    try:
        await asyncio.to_thread(supervisor.wait_for_log, "supervising:", 120)
        before = running_pids(places)
        assert set(before) == EXPECTED
        assert pids_alive(*before.values()) == list(before.values())

        down = stack(own_settings, "down", "--keep-stack", "--state-dir", str(places.root))

        assert down.returncode == 0, down.stderr
        assert supervisor.proc is not None
        assert supervisor.proc.wait(timeout=60) == 0
        assert pids_alive(*before.values()) == []
        assert not places.supervisor_pid.exists()
        print(f"\nforeground run, before down: supervisor {supervisor.proc.pid}, {listing(before)}")  # noqa: T201
        print("after down: nothing of it runs")  # noqa: T201
    finally:
        supervisor.kill()
        kill_children(places)


async def test_a_detached_run_is_supervised_until_down_stops_it(
    own_settings: Settings, places: Places
) -> None:
    detach = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "services.local.supervisor",
            "--detach",
            "--no-demo",
            "--state-dir",
            str(places.root),
        ],
        env=env_of(own_settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    daemon = supervisor_pid(places)
    try:
        assert detach.returncode == 0, detach.stdout + detach.stderr
        assert "supervising:" in detach.stdout
        assert daemon is not None, "the supervisor itself keeps running, detached"
        before = running_pids(places)
        assert set(before) == EXPECTED

        os.kill(before["engine"], signal.SIGKILL)
        report = await eventually(
            lambda: restarted(status(own_settings, places), "engine"), timeout=60
        )
        engine = next(p for p in report["system"]["processes"] if p["name"] == "engine")
        assert engine["pid"] != before["engine"]
        assert engine["restarts"] == 1
        assert engine["last_exit"]["signal"] == "SIGKILL"
        assert report["system"]["supervisor"] == {
            **report["system"]["supervisor"],
            "pid": daemon,
            "mode": "detached",
        }
        everything = running_pids(places)

        down = stack(own_settings, "down", "--keep-stack", "--state-dir", str(places.root))

        assert down.returncode == 0, down.stderr
        assert pids_alive(daemon, *everything.values()) == []
        stopped = status(own_settings, places)["system"]
        assert stopped["supervisor"]["running"] is False
        assert all(p["pid"] is None for p in stopped["processes"])
        print(f"\ndetached run, before down: supervisor {daemon}, {listing(everything)}")  # noqa: T201
        print("after down: nothing of it runs")  # noqa: T201
    finally:
        if daemon is not None:
            kill_quietly(daemon)
        kill_children(places)


def kill_children(places: Places) -> None:
    """Whatever a supervisor of these places left running (after a failed test)."""
    state = read_state(places)
    for child in state["children"] if state is not None else ():
        if child["pid"] is not None:
            kill_quietly(child["pid"])


def restarted(report: dict[str, Any], name: str) -> dict[str, Any] | None:
    process = next(p for p in report["system"]["processes"] if p["name"] == name)
    return report if process["restarts"] >= 1 and process["state"] == "running" else None


def test_status_of_a_place_where_nothing_ever_ran_says_so(tmp_path: Path) -> None:
    found = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(STACK), "status", "--json", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert json.loads(found.stdout)["system"] is None
