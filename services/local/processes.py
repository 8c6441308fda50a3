"""A child process of the supervisor: what it is (`Child`: its command line, where it answers,
how it shows that it is alive, what it has been through), how it is started (`spawn_python`) and
how it ended (`Exit`)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from services.local.places import ROOT


class Running(Protocol):
    """What the supervisor needs of a started process (a `subprocess.Popen`)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


Spawn = Callable[[list[str], dict[str, str], Path], Running]


def spawn_python(argv: list[str], env: dict[str, str], log_path: Path) -> Running:
    """`python ARGV...` in its own session (a Ctrl-C reaches the supervisor only), output to
    its log file."""
    with log_path.open("ab") as log:
        return subprocess.Popen(  # noqa: S603 - our own modules, fixed interpreter
            [sys.executable, *argv],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


@dataclass
class Exit:
    code: int | None
    signal: str | None
    at: float
    uptime: float

    def describe(self) -> str:
        how = f"killed by {self.signal}" if self.signal else f"exit {self.code}"
        return f"{how} after {format_duration(self.uptime)}"


@dataclass
class Child:
    name: str
    argv: list[str]
    kind: str = ""
    address: str = ""
    health_url: str | None = None
    ready_text: str | None = None
    heartbeat: bool = False
    environ: Callable[[dict[str, str]], dict[str, str]] | None = None
    """Its environment, made from the supervisor's (supervisor.py: its own Kafka credentials)."""
    metrics: bool = False
    """Serves metrics on a port the supervisor gives it (`OTC_METRICS_PORT`)."""
    metrics_address: str | None = None
    """`host:port` of its metrics, if it serves them on a port of its own (the gateway)."""
    metrics_port: int | None = None
    process: Running | None = None
    restarts: int = 0
    failures: int = 0
    started_at: float = 0.0
    started_wall: float = 0.0
    last_exit: Exit | None = None
    next_start: float | None = None

    def __post_init__(self) -> None:
        self.kind = self.kind or self.name

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def state(self) -> str:
        if self.alive():
            return "running"
        if self.next_start is not None:
            return "restarting"
        return "stopped"


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:  # noqa: PLR2004 - a minute
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:  # noqa: PLR2004 - an hour
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def signal_name(code: int | None) -> str | None:
    if code is None or code >= 0:
        return None
    with contextlib.suppress(ValueError):
        return signal.Signals(-code).name
    return f"signal {-code}"
