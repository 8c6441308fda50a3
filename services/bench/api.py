"""`otc bench api`: complete order lifecycles (quote, confirm, operator approval, settlement)
through the running REST API (`deploy/local/run` first, for its demo data and keys).

Two phases. Closed loop: `concurrency` lifecycles in flight, each started when one ends, for
the sustained rate (complete orders/s). Fixed rate: lifecycles started at half that rate
whatever happens to the earlier ones (an offered load), for latency below saturation. For each
phase: quote, confirm and approve latency p50/p99, where their time went (the gateway's
`Server-Timing` header, which carries the engine's stages too: services/timings.py), and the
relay's and the projection's lag. The bench watches its orders settle and samples the lags in
PostgreSQL itself, one query every 20 ms, not through the API, so that its polling is not
what it measures. Nothing here is a test; it only prints figures.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import typer

from services.bench import cpu
from services.bench.cpu import CpuUse
from services.bench.tools import percentile
from services.local.demo import EUR_FUNDING, DemoCustomer, saved_demo
from services.relay.relay import RELAY_NAME
from services.settings import Settings
from services.timings import parse_timing

ROUTES = ("quote", "confirm", "approve")
POSITIONS = (
    "SELECT (SELECT max(notification_id) FROM orders_events),"
    " (SELECT position FROM tail_positions WHERE name = %s),"
    " (SELECT max(notification_id) FROM order_list_tracking WHERE application_name = 'Orders')"
)


@dataclass
class Phase:
    """What one phase measured."""

    name: str
    latencies: dict[str, list[float]] = field(default_factory=lambda: {r: [] for r in ROUTES})
    stages: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: {r: {} for r in ROUTES}
    )
    completed: int = 0
    seconds: float = 0.0
    relay_lag: list[float] = field(default_factory=list)
    projection_lag: list[float] = field(default_factory=list)
    cpu: CpuUse | None = None

    def timed(self, route: str, started: float, response: httpx.Response) -> None:
        self.latencies[route].append(time.perf_counter() - started)
        for stage, value in parse_timing(response.headers.get("server-timing")).items():
            self.stages[route].setdefault(stage, []).append(value)

    def lines(self) -> list[str]:
        rate = self.completed / self.seconds if self.seconds else 0.0
        out = [f"{self.name}: {self.completed} orders in {self.seconds:.1f}s = {rate:,.1f}/s"]
        for route in ROUTES:
            values = self.latencies[route]
            out.append(f"  {route:<8} p50 {ms(values, 0.5)}  p99 {ms(values, 0.99)}")
            stages = "  ".join(
                f"{stage} {percentile(v, 0.5):.1f}/{percentile(v, 0.99):.1f}"
                for stage, v in self.stages[route].items()
                if v and stage not in ("batch", "sent")
            )
            if stages:
                out.append(f"           where it went, ms p50/p99: {stages}")
        out.append(
            f"  relay lag p50 {ms(self.relay_lag, 0.5)}  p99 {ms(self.relay_lag, 0.99)};"
            f"  projection lag p50 {ms(self.projection_lag, 0.5)}"
            f"  p99 {ms(self.projection_lag, 0.99)}  (20 ms sampling)"
        )
        if self.cpu is not None:
            every = "every process of the system, Kafka, PostgreSQL"
            line = self.cpu.describe(
                self.completed, child="", own="the bench", per="complete order", rest=every
            )
            out.append(f"  {line}")
        return out


def ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.1f} ms" if values else "n/a"


SOURCE_AMOUNT = Decimal("100.00")
"""What each order of the bench buys USDC with, in EUR."""

ENDED = frozenset({"completed", "failed", "cancelled", "expired", "rejected"})
"""Statuses an order does not leave on its own."""


class LifecycleEndedError(RuntimeError):
    """An order the bench waits for ended in another status (a demo account spent, say)."""

    def __init__(self, order_id: str, status: str, reason: str | None, wanted: str) -> None:
        because = f" ({reason})" if reason else ""
        hint = ""
        if reason == "INSUFFICIENT_FUNDS":
            hint = (
                "; the demo customer's EUR account is spent (it is funded once, for about"
                f" {EUR_FUNDING / SOURCE_AMOUNT:,.0f} orders of {SOURCE_AMOUNT}):"
                " `otc demo load` makes fresh demo customers"
            )
        super().__init__(f"order {order_id} ended {status}{because}, not {wanted}{hint}")


class Observer:
    """One PostgreSQL connection polled every `interval` seconds: the positions of the event
    store, the relay and the projection (their lags: how long after the store reached a
    position each of them did), and the status of the orders being waited for."""

    def __init__(self, settings: Settings, interval: float = 0.02) -> None:
        self.settings = settings
        self.interval = interval
        self.phase: Phase | None = None
        self.waiting: dict[str, tuple[str, asyncio.Future[None]]] = {}
        self.stop = asyncio.Event()

    async def reached(self, order_id: str, status: str, timeout: float = 120) -> None:  # noqa: ASYNC109
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting[order_id] = (status, future)
        try:
            await asyncio.wait_for(future, timeout)
        finally:
            self.waiting.pop(order_id, None)

    async def run(self) -> None:
        seen: list[tuple[int, float]] = []
        relayed = projected = 0
        async with await psycopg.AsyncConnection.connect(
            self.settings.conninfo(), autocommit=True
        ) as conn:
            while not self.stop.is_set():
                now = time.perf_counter()
                cursor = await conn.execute(POSITIONS, (RELAY_NAME,))
                row: Any = await cursor.fetchone()
                store, relay, view = (int(value or 0) for value in row)
                if not seen or store > seen[-1][0]:
                    seen.append((store, now))
                    del seen[:-2000]
                if self.phase is not None:
                    if relay > relayed:
                        self.phase.relay_lag.append(now - first_at(seen, relay, now))
                    if view > projected:
                        self.phase.projection_lag.append(now - first_at(seen, view, now))
                relayed, projected = max(relayed, relay), max(projected, view)
                await self.statuses(conn)
                await asyncio.sleep(self.interval)

    async def statuses(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if not self.waiting:
            return
        cursor = await conn.execute(
            "SELECT id::text, status, view->>'failureReason' FROM order_list"
            " WHERE id = ANY(%s::uuid[])",
            (list(self.waiting),),
        )
        for order_id, status, reason in await cursor.fetchall():
            wanted = self.waiting.get(order_id)
            if wanted is None or wanted[1].done():
                continue
            if wanted[0] == status:
                wanted[1].set_result(None)
            elif status in ENDED:
                wanted[1].set_exception(LifecycleEndedError(order_id, status, reason, wanted[0]))


def first_at(seen: list[tuple[int, float]], position: int, now: float) -> float:
    """When the event store was first seen at or past `position`."""
    return next((t for reached, t in seen if reached >= position), now)


@dataclass(frozen=True)
class Desk:
    client: httpx.AsyncClient
    operator_key: str
    customer: DemoCustomer
    observer: Observer


async def lifecycle(desk: Desk, phase: Phase) -> None:
    started = time.perf_counter()
    quoted = await desk.client.post(
        "/otc-exchanges/quote",
        json={
            "side": "buy",
            "sourceAccountId": desk.customer.active_account,
            "destinationWalletId": desk.customer.ethereum_wallet,
            "sourceAmount": str(SOURCE_AMOUNT),
        },
    )
    phase.timed("quote", started, quoted.raise_for_status())
    order_id = quoted.json()["id"]
    started = time.perf_counter()
    confirmed = await desk.client.post(
        "/otc-exchanges",
        json={"quoteId": order_id, "side": "buy"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    phase.timed("confirm", started, confirmed.raise_for_status())
    await desk.observer.reached(order_id, "pending_approval")
    started = time.perf_counter()
    approved = await desk.client.post(
        f"/ops/otc-exchanges/{order_id}/approve", headers={"x-api-key": desk.operator_key}
    )
    phase.timed("approve", started, approved.raise_for_status())
    await desk.observer.reached(order_id, "completed")
    phase.completed += 1


async def measured(desk: Desk, phase: Phase, work: Callable[[], Awaitable[None]]) -> Phase:
    desk.observer.phase = phase
    before = cpu.sample()
    started = time.perf_counter()
    await work()
    phase.seconds = time.perf_counter() - started
    phase.cpu = CpuUse.between(before, cpu.sample(), phase.seconds)
    desk.observer.phase = None
    return phase


async def closed_loop(desk: Desk, orders: int, concurrency: int) -> Phase:
    gate = asyncio.Semaphore(concurrency)
    phase = Phase(f"closed loop, {concurrency} lifecycles in flight")

    async def one() -> None:
        async with gate:
            await lifecycle(desk, phase)

    async def work() -> None:
        await asyncio.gather(*(one() for _ in range(orders)))

    return await measured(desk, phase, work)


async def fixed_rate(desk: Desk, rate: float, orders: int) -> Phase:
    phase = Phase(f"fixed rate, {rate:,.1f} lifecycles started per second")

    async def at(n: int) -> None:
        await asyncio.sleep(n / rate)
        await lifecycle(desk, phase)

    async def work() -> None:
        await asyncio.gather(*(at(n) for n in range(orders)))

    return await measured(desk, phase, work)


async def bench_api(settings: Settings, orders: int, concurrency: int) -> list[str]:
    demo = saved_demo()
    if demo is None:
        raise typer.BadParameter("no demo data: start the system with deploy/local/run first")
    base = f"http://{settings.gateway_host}:{settings.gateway_port}"
    observer = Observer(settings)
    observing = asyncio.create_task(observer.run())
    limits = httpx.Limits(
        max_connections=concurrency * 4, max_keepalive_connections=concurrency * 4
    )
    customer = demo.customers[0]
    async with httpx.AsyncClient(
        base_url=base, headers={"x-api-key": customer.write_key}, timeout=120, limits=limits
    ) as client:
        desk = Desk(client, demo.operator_key, customer, observer)
        await closed_loop(desk, min(orders, 20), min(concurrency, 10))  # warm-up
        sustained = await closed_loop(desk, orders, concurrency)
        rate = sustained.completed / sustained.seconds / 2
        offered = await fixed_rate(desk, rate, max(20, min(orders, int(rate * 20))))
    observer.stop.set()
    await observing
    return [
        "REST API: complete lifecycles (quote, confirm, approve, settlement by the workers)",
        *sustained.lines(),
        *offered.lines(),
    ]
