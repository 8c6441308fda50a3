"""`otc bench api`: complete order lifecycles (quote, confirm, operator approval, settlement)
through the running REST API (`deploy/local/run` first, for its demo data and keys). It prints
orders/s, quote and confirm latency p50/p99, and the projection lag p50/p99, sampled from the
event store's and the read model's positions. Nothing here is a test; it only prints figures.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any, LiteralString

import httpx
import psycopg
import typer

from services.bench.tools import percentile
from services.local.demo import DemoCustomer, saved_demo
from services.settings import Settings


@dataclass
class ApiFigures:
    quote: list[float]
    confirm: list[float]
    completed: int = 0


class LagSampler:
    """Projection lag, sampled: when the read model reaches notification N, how long after the
    event store did. Polls both positions every `interval` seconds."""

    def __init__(self, settings: Settings, interval: float = 0.02) -> None:
        self.settings = settings
        self.interval = interval
        self.store_seen: list[tuple[int, float]] = []
        self.lags: list[float] = []
        self.stop = asyncio.Event()

    async def run(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self.settings.conninfo(), autocommit=True
        ) as conn:
            tracked = 0
            while not self.stop.is_set():
                now = time.perf_counter()
                store = await self._scalar(conn, "SELECT max(notification_id) FROM orders_events")
                view = await self._scalar(
                    conn,
                    "SELECT max(notification_id) FROM order_list_tracking"
                    " WHERE application_name = 'Orders'",
                )
                if not self.store_seen or store > self.store_seen[-1][0]:
                    self.store_seen.append((store, now))
                if view > tracked:
                    tracked = view
                    first = next((t for position, t in self.store_seen if position >= view), now)
                    self.lags.append(now - first)
                await asyncio.sleep(self.interval)

    @staticmethod
    async def _scalar(conn: psycopg.AsyncConnection[Any], query: LiteralString) -> int:
        cursor = await conn.execute(query)
        row = await cursor.fetchone()
        return int(row[0] or 0) if row is not None else 0


async def api_lifecycle(
    client: httpx.AsyncClient,
    operator_key: str,
    customer: DemoCustomer,
    figures: ApiFigures,
) -> None:
    started = time.perf_counter()
    quoted = await client.post(
        "/otc-exchanges/quote",
        json={
            "side": "buy",
            "sourceAccountId": customer.active_account,
            "destinationWalletId": customer.ethereum_wallet,
            "sourceAmount": "100.00",
        },
    )
    figures.quote.append(time.perf_counter() - started)
    order_id = quoted.raise_for_status().json()["id"]
    started = time.perf_counter()
    confirmed = await client.post(
        "/otc-exchanges",
        json={"quoteId": order_id, "side": "buy"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    figures.confirm.append(time.perf_counter() - started)
    confirmed.raise_for_status()
    await wait_for(client, order_id, "pending_approval")
    approved = await client.post(
        f"/ops/otc-exchanges/{order_id}/approve", headers={"x-api-key": operator_key}
    )
    approved.raise_for_status()
    await wait_for(client, order_id, "completed")
    figures.completed += 1


async def wait_for(client: httpx.AsyncClient, order_id: str, status: str) -> None:
    for _ in range(600):
        response = await client.get(f"/otc-exchanges/{order_id}")
        if response.json().get("status") == status:
            return
        await asyncio.sleep(0.25)
    raise RuntimeError(f"order {order_id} never reached {status}")


async def bench_api(settings: Settings, orders: int, concurrency: int) -> None:
    demo = saved_demo()
    if demo is None:
        raise typer.BadParameter("no demo data: start the system with deploy/local/run first")
    customer = demo.customers[0]
    base = f"http://{settings.gateway_host}:{settings.gateway_port}"
    figures = ApiFigures(quote=[], confirm=[])
    sampler = LagSampler(settings)
    sampling = asyncio.create_task(sampler.run())
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(
        max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2
    )
    async with httpx.AsyncClient(
        base_url=base,
        headers={"x-api-key": customer.write_key},
        timeout=120,
        limits=limits,
    ) as client:

        async def one() -> None:
            async with gate:
                await api_lifecycle(client, demo.operator_key, customer, figures)

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(orders)))
        elapsed = time.perf_counter() - started
    sampler.stop.set()
    await sampling

    def ms(values: list[float], q: float) -> str:
        return f"{percentile(values, q) * 1000:.1f} ms" if values else "n/a"

    done = figures.completed
    typer.echo(f"REST API: {done} lifecycles (quote, confirm, approve, settle) in {elapsed:.1f}s")
    typer.echo(f"  throughput          {done / elapsed:,.1f} orders/s ({concurrency} in flight)")
    typer.echo(f"  quote latency       p50 {ms(figures.quote, 0.5)}  p99 {ms(figures.quote, 0.99)}")
    typer.echo(
        f"  confirm latency     p50 {ms(figures.confirm, 0.5)}  p99 {ms(figures.confirm, 0.99)}"
    )
    typer.echo(
        f"  projection lag      p50 {ms(sampler.lags, 0.5)}  p99 {ms(sampler.lags, 0.99)}"
        f"  ({len(sampler.lags)} samples, 20 ms resolution)",
    )
