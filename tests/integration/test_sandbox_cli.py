"""`python -m services.local.sandbox NAME --port N` runs a sandbox on loopback as its own
process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from services.settings import Settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def sandbox_process(name: str, settings: Settings, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "OTC_PG_DBNAME": settings.pg_dbname}
    process = subprocess.Popen(  # noqa: S603 - our own module with a fixed interpreter
        [sys.executable, "-m", "services.local.sandbox", name, "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> httpx.Response:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        try:
            return httpx.get(f"{url}/health", timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer /health")


@pytest.mark.parametrize("name", ["provider", "bank", "chain"])
def test_each_sandbox_runs_as_a_process_and_answers_health(settings: Settings, name: str) -> None:
    port = free_port()
    with sandbox_process(name, settings, port) as process:
        health = wait_healthy(f"http://127.0.0.1:{port}", process)
        faults = httpx.get(f"http://127.0.0.1:{port}/admin/faults", timeout=5)

    assert health.json() == {"status": "ok"}
    assert faults.json()["down"] is False
