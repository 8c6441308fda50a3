"""The workloads `otc bench engine` drives, and what one measures.

`closed_loop` is the system's real pattern: each command of an order is sent once the reply to
the one before it came back, a number of orders in flight (or started at a fixed rate);
`all_at_once` is not (named so). A `Run` keeps a workload's latencies, the stages they went
through (services/timings.py) and, with `with_cpu`, where the CPU went (services/bench/cpu.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from domain import commands as c
from services.bench import cpu
from services.bench.cpu import CpuUse
from services.bench.tools import percentile
from services.command_client import CommandClient


@dataclass
class Run:
    """What one workload measured: seconds of the measured part, each command's latency, and
    where it went (services/timings.py), in milliseconds by stage."""

    seconds: float
    latencies: list[float]
    stages: dict[str, list[float]] = field(default_factory=dict)
    cpu: CpuUse | None = None

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def describe(self) -> str:
        return (
            f"{len(self.latencies)} commands in {self.seconds:.2f}s = {self.rate:,.0f} commands/s;"
            f" per command p50 {ms(self.latencies, 0.50)}  p99 {ms(self.latencies, 0.99)}"
            f"  p99.9 {ms(self.latencies, 0.999)}"
        )

    def breakdown(self) -> str:
        """Each stage's p50 / p99 in ms (the stages overlap nowhere but publish and queue: the
        queue starts when the command record is made, before the broker acknowledges it)."""
        return "  ".join(
            f"{name} {percentile(values, 0.5):.1f}/{percentile(values, 0.99):.1f}"
            for name, values in self.stages.items()
            if values
        )


async def with_cpu(run: Awaitable[Run], child_pid: int | None = None) -> Run:
    """`run`, with the CPU the machine, the child and this process spent on it."""
    before = cpu.sample(child_pid)
    done = await run
    return replace(done, cpu=CpuUse.between(before, cpu.sample(child_pid), done.seconds))


def ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.1f} ms" if values else "n/a"


def checked(reply: Any) -> None:  # noqa: ANN401 - a ReplyEnvelope
    if not reply.ok:
        raise RuntimeError(f"command refused: {reply.error}")


Sender = Callable[[c.Command], Awaitable[dict[str, float]]]
"""Sends one command and waits for its reply; returns where its time went, by stage (ms)."""


async def closed_loop(
    send: Sender,
    orders: list[list[c.Command]],
    concurrency: int,
    *,
    pace: float | None = None,
) -> Run:
    """The system's real pattern: each command of an order is sent once the reply to the one
    before it came back (as the gateway, the workers and operators do). `concurrency` orders in
    flight, each started as soon as one finishes; or, with `pace` (seconds between the starts of
    two orders), orders started at that fixed rate whatever happens to the earlier ones (an
    offered load, to see latency below saturation). A command's latency is from its sending to
    its reply."""
    latencies: list[float] = []
    stages: dict[str, list[float]] = {}
    gate = asyncio.Semaphore(concurrency if pace is None else len(orders))

    async def one_order(commands: list[c.Command]) -> None:
        async with gate:
            for command in commands:
                sent = time.perf_counter()
                for name, value in (await send(command)).items():
                    stages.setdefault(name, []).append(value)
                latencies.append(time.perf_counter() - sent)

    async def paced(n: int, commands: list[c.Command], pace: float) -> None:
        await asyncio.sleep(n * pace)
        await one_order(commands)

    started = time.perf_counter()
    if pace is None:
        await asyncio.gather(*(one_order(commands) for commands in orders))
    else:
        await asyncio.gather(*(paced(n, cmds, pace) for n, cmds in enumerate(orders)))
    return Run(time.perf_counter() - started, latencies, stages)


async def all_at_once(
    client: CommandClient, orders: list[list[c.Command]], concurrency: int
) -> Run:
    """Not the system's pattern (named so): each order's five commands published together
    without waiting for replies, so they land in one batch; a command's latency is that of its
    whole order."""
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one_order(commands: list[c.Command]) -> None:
        async with gate:
            sent = time.perf_counter()
            for reply in await client.send_all(commands, timeout=120):
                checked(reply)
            latencies.extend([time.perf_counter() - sent] * len(commands))

    started = time.perf_counter()
    await asyncio.gather(*(one_order(commands) for commands in orders))
    return Run(time.perf_counter() - started, latencies)
