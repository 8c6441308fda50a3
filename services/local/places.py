"""Where the local run keeps its state (`.run/`, ignored by git), and reading what a supervisor
left there: its state file (what `deploy/local/status` shows) and, if it still runs, its pid."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / ".run"
"""The local run's state, logs and generated secrets (ignored by git)."""
SECRETS = RUN / "secrets"


@dataclass
class Places:
    """Where the supervisor keeps its state: by default under `.run/`."""

    root: Path = RUN

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def heartbeats(self) -> Path:
        return self.root / "heartbeats"

    @property
    def state(self) -> Path:
        return self.root / "supervisor.json"

    @property
    def supervisor_pid(self) -> Path:
        return self.root / "supervisor.pid"

    @property
    def supervisor_log(self) -> Path:
        return self.logs / "supervisor.log"

    @property
    def metrics_targets(self) -> Path:
        return self.root / "prometheus" / "targets.json"


def read_state(places: Places) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = json.loads(places.state.read_text())
    except (OSError, ValueError):
        return None
    return found


def supervisor_pid(places: Places) -> int | None:
    """The pid of a live supervisor using these places, judged by its command line."""
    try:
        pid = int(places.supervisor_pid.read_text().strip() or "0")
    except (OSError, ValueError):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if pid <= 0 or not cmdline.exists():
        return None
    with contextlib.suppress(OSError):
        if b"services.local.supervisor" in cmdline.read_bytes():
            return pid
    return None
