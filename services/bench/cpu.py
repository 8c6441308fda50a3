"""Where a benchmark's CPU went over one measured part: the whole machine's, one child
process's (the engine the benchmark started) and the benchmark's own, read from Linux's /proc
before and after. On a machine whose processes share its cores, this is what bounds a rate: a
command that costs 1.5 ms of CPU somewhere cannot go faster than cores / 1.5 ms. Elsewhere than
Linux nothing is measured (`sample` is None) and nothing is printed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BUSY_FIELDS = (0, 1, 2, 5, 6, 7)
"""Of /proc/stat's `cpu` line: user, nice, system, irq, softirq, steal (not idle, iowait)."""


def machine_busy_ticks(stat: str) -> int:
    """The machine's busy clock ticks, all cores together, from the text of /proc/stat."""
    fields = stat.splitlines()[0].split()[1:]
    return sum(int(fields[i]) for i in BUSY_FIELDS)


def process_ticks(stat: str) -> int:
    """A process's user + system clock ticks from the text of /proc/<pid>/stat (its name, in
    parentheses, may hold spaces: the fields are counted after the last one)."""
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@dataclass(frozen=True)
class Sample:
    machine: float
    own: float
    child: float | None
    """CPU seconds so far: the machine's busy time, this process's, the child's."""


def sample(child_pid: int | None = None) -> Sample | None:
    proc = Path("/proc")
    if not (proc / "stat").exists():
        return None
    tick = os.sysconf("SC_CLK_TCK")
    child = None
    if child_pid is not None:
        try:
            child = process_ticks((proc / str(child_pid) / "stat").read_text()) / tick
        except OSError:
            child = None
    own = os.times()
    machine = machine_busy_ticks((proc / "stat").read_text()) / tick
    return Sample(machine, own.user + own.system, child)


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds spent between two samples, over `seconds` of wall time."""

    seconds: float
    machine: float
    own: float
    child: float | None

    @classmethod
    def between(cls, before: Sample | None, after: Sample | None, seconds: float) -> CpuUse | None:
        if before is None or after is None:
            return None
        child = None
        if before.child is not None and after.child is not None:
            child = after.child - before.child
        return cls(seconds, after.machine - before.machine, after.own - before.own, child)

    def describe(
        self,
        count: int,
        *,
        child: str,
        own: str,
        per: str = "command",
        rest: str = "Kafka, PostgreSQL, ...",
    ) -> str:
        """The cores busy, then each part's CPU per `per` (`count` of them), the rest (all else
        on the machine) last."""
        scale = 1000 / max(count, 1)
        parts = [(own, self.own)]
        if self.child is not None:
            parts.insert(0, (child, self.child))
        left = self.machine - sum(value for _, value in parts)
        listed = ", ".join(f"{name} {value * scale:.2f}" for name, value in parts)
        return (
            f"CPU: {self.machine / self.seconds:.2f} of {os.cpu_count()} cores busy; per {per},"
            f" ms: {listed}, the rest ({rest}) {left * scale:.2f}; all {self.machine * scale:.2f}"
        )
