"""`otc bench engine`: commands through Kafka into the engine, against one save per command.

It makes a database and topics of its own on the running stack, starts the engine as a
subprocess, and drives complete order lifecycles (quote, confirm, debit, approve, payout: five
commands each) from many concurrent clients, each order's commands in sequence. It prints the
sustained commands/s, the reply latency percentiles, and the rate of the naive approach: the
same commands, each loaded, decided and saved with its own `Application.save`, on the same
database. Nothing here is a test; it only prints figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, LiteralString

import httpx
import psycopg
import typer
from aiokafka.admin import NewTopic
from psycopg import sql

from domain import commands as c
from domain.commands import ActorRef
from domain.movements import Party
from domain.order import Side
from services import kafka
from services.adapters.fakes import FakePricing, FakeWalletBalances
from services.bench_report import write_section
from services.command_client import CommandClient
from services.demo import DemoCustomer, saved_demo
from services.engine.__main__ import policy_of
from services.engine.app import open_orders
from services.engine.processor import CommandProcessor
from services.resources.store import PostgresResourceDirectory
from services.settings import Settings

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print figures.")

OPERATOR = ActorRef.operator(uuid.UUID(int=0xBE4C), "Bench Operator")
TREASURY = ActorRef.system(Party.EUR_TREASURY)
CHAIN = ActorRef.system(Party.USDC_CHAIN)


@dataclass(frozen=True)
class BenchCustomer:
    id: uuid.UUID
    account: uuid.UUID
    wallet: uuid.UUID


def lifecycle(customer: BenchCustomer) -> list[c.Command]:
    order_id = uuid.uuid4()
    me = ActorRef.customer(customer.id)

    def common(actor: ActorRef) -> dict[str, object]:
        return {
            "command_id": uuid.uuid4(),
            "order_id": order_id,
            "customer_id": customer.id,
            "actor": actor,
            "issued_at": datetime.now(UTC),
        }

    return [
        c.RequestQuote(
            **common(me),
            side=Side.BUY,
            source_id=customer.account,
            destination_id=customer.wallet,
            source_amount=Decimal("100.00"),
        ),
        c.ConfirmQuote(**common(me), side=Side.BUY),
        c.RecordSourceDebit(**common(TREASURY), reference=f"bench-debit-{order_id}"),
        c.ApproveOrder(**common(OPERATOR), rate=Decimal("1.0750")),
        c.RecordPayout(**common(CHAIN), attempt=1, reference=f"bench-payout-{order_id}"),
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.contextmanager
def scratch_database(settings: Settings, prefix: str) -> Iterator[Settings]:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield settings.model_copy(update={"pg_dbname": name})
    finally:
        with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.asynccontextmanager
async def scratch_topics(settings: Settings, partitions: int) -> AsyncIterator[Settings]:
    suffix = uuid.uuid4().hex[:10]
    names = {
        "commands_topic": f"bench.commands.{suffix}",
        "replies_topic": f"bench.replies.{suffix}",
        "events_topic": f"bench.events.{suffix}",
        "dlq_topic": f"bench.dlq.{suffix}",
    }
    admin = kafka.admin(settings, client_id="otc-bench")
    await admin.start()
    try:
        created = await admin.create_topics(
            [
                NewTopic(name, num_partitions=partitions, replication_factor=1)
                for name in names.values()
            ],
        )
        refused = [topic for topic, error_code, *_ in created.topic_errors if error_code]
        if refused:
            raise RuntimeError(
                f"could not create {', '.join(refused)}: the bench makes topics of its own, so it "
                "runs as the Kafka admin (OTC_KAFKA_USERNAME=admin, the password in "
                ".run/secrets/kafka/admin)"
            )
        yield settings.model_copy(
            update={**names, "engine_group": f"bench-engine-{suffix}", "upstreams": "fake"}
        )
    finally:
        await admin.delete_topics(list(names.values()))
        await admin.close()


async def make_customer(settings: Settings) -> BenchCustomer:
    async with PostgresResourceDirectory(settings) as directory:
        await directory.create_schema()
        customer = await directory.create_customer("Bench")
        account = await directory.create_account(
            customer.id, name="Bench EUR", iban="DE89370400440532013000"
        )
        wallet = await directory.create_wallet(
            customer.id,
            label="Bench",
            network="ethereum",
            usdc_address="0x" + "be" * 20,
        )
    return BenchCustomer(customer.id, account.account.id, wallet.id)


@contextlib.contextmanager
def engine_process(settings: Settings, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, **settings.to_env(), "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.engine"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "engine: consuming" not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the engine did not start; see {log_path}")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class Run:
    """What one workload measured: seconds of the measured part and each command's latency."""

    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def describe(self) -> str:
        return (
            f"{len(self.latencies)} commands in {self.seconds:.2f}s = {self.rate:,.0f} commands/s;"
            f" per command p50 {ms(self.latencies, 0.50)}  p99 {ms(self.latencies, 0.99)}"
            f"  p99.9 {ms(self.latencies, 0.999)}"
        )


def ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.1f} ms" if values else "n/a"


def checked(reply: Any) -> None:  # noqa: ANN401 - a ReplyEnvelope
    if not reply.ok:
        raise RuntimeError(f"command refused: {reply.error}")


async def closed_loop(
    send: Callable[[c.Command], Awaitable[None]],
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
    gate = asyncio.Semaphore(concurrency if pace is None else len(orders))

    async def one_order(commands: list[c.Command]) -> None:
        async with gate:
            for command in commands:
                sent = time.perf_counter()
                await send(command)
                latencies.append(time.perf_counter() - sent)

    async def paced(n: int, commands: list[c.Command], pace: float) -> None:
        await asyncio.sleep(n * pace)
        await one_order(commands)

    started = time.perf_counter()
    if pace is None:
        await asyncio.gather(*(one_order(commands) for commands in orders))
    else:
        await asyncio.gather(*(paced(n, cmds, pace) for n, cmds in enumerate(orders)))
    return Run(time.perf_counter() - started, latencies)


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


@contextlib.asynccontextmanager
async def naive_sender(
    settings: Settings, concurrency: int
) -> AsyncIterator[Callable[[c.Command], Awaitable[None]]]:
    """The ordinary eventsourcing way, in the same process as its clients: per command one load,
    decide and `Application.save` (`CommandProcessor.process_one`), in a thread of a pool as
    large as the number of orders in flight, on the same database. No Kafka."""
    app = open_orders(settings)
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=concurrency))
    try:
        async with PostgresResourceDirectory(settings) as resources:
            processor = CommandProcessor(
                app,
                pricing=FakePricing(),
                balances=FakeWalletBalances(),
                resources=resources,
                policy=policy_of(settings),
                clock=lambda: datetime.now(UTC),
            )

            async def send(command: c.Command) -> None:
                [reply] = await processor.process_one(command)
                checked(reply)

            yield send
    finally:
        app.close()


@dataclass(frozen=True)
class EngineFigures:
    workload: str
    concurrency: int
    engine: Run
    naive: Run
    half_rate: Run | None

    def lines(self) -> list[str]:
        out = [
            f"workload: {self.workload}; {self.concurrency} orders in flight",
            f"engine (Kafka in, batched saves, replies on Kafka)  {self.engine.describe()}",
            f"naive  (one load + Application.save per command)    {self.naive.describe()}",
            (
                "ratio  engine / naive at the same concurrency        "
                f"{self.engine.rate / self.naive.rate:.1f}x"
            ),
        ]
        if self.half_rate is not None:
            out.append(
                f"engine at half its sustained rate (offered {self.engine.rate / 2:,.0f}/s)"
                f"  {self.half_rate.describe()}"
            )
        return out


async def bench_engine(
    settings: Settings, orders: int, concurrency: int, naive_orders: int, *, together: bool
) -> EngineFigures:
    with scratch_database(settings, "bench") as db_settings:
        async with scratch_topics(db_settings, settings.kafka_partitions) as bench_settings:
            customer = await make_customer(bench_settings)
            log_path = Path(".run") / "bench-engine.log"
            log_path.parent.mkdir(exist_ok=True)
            with engine_process(bench_settings, log_path):
                async with CommandClient(bench_settings) as client:

                    async def send(command: c.Command) -> None:
                        checked(await client.send(command, timeout=120))

                    # Warm-up: connections, the group join, the first batches.
                    await closed_loop(send, [lifecycle(customer) for _ in range(20)], 10)
                    work = [lifecycle(customer) for _ in range(orders)]
                    if together:
                        engine = await all_at_once(client, work, concurrency)
                        half: Run | None = None
                    else:
                        engine = await closed_loop(send, work, concurrency)
                        pace = 5 / (engine.rate / 2)
                        count = max(20, min(orders, int(20 / pace)))
                        half = await closed_loop(
                            send,
                            [lifecycle(customer) for _ in range(count)],
                            concurrency,
                            pace=pace,
                        )
            async with naive_sender(bench_settings, concurrency) as naive_send:
                await closed_loop(naive_send, [lifecycle(customer) for _ in range(10)], 10)
                naive = await closed_loop(
                    naive_send, [lifecycle(customer) for _ in range(naive_orders)], concurrency
                )
    workload = (
        "all at once (each order's five commands published together; not the system's pattern)"
        if together
        else "closed loop (each command awaits its reply before its order's next one)"
    )
    return EngineFigures(workload, concurrency, engine, naive, half)


@bench_app.command("engine")
def engine_command(
    *,
    orders: int = typer.Option(2_000, help="order lifecycles through the engine (5 commands each)"),
    concurrency: int = typer.Option(50, help="orders in flight at once, engine and naive alike"),
    naive_orders: int = typer.Option(600, help="order lifecycles for the naive peer"),
    all_at_once: Annotated[
        bool,
        typer.Option(
            "--all-at-once",
            help="publish each order's five commands together without awaiting replies",
        ),
    ] = False,
    record: Annotated[
        bool, typer.Option("--record", help="also write the figures into docs/benchmarks.md")
    ] = False,
) -> None:
    """Commands/s and per-command latency of the engine against the naive peer, at the same
    concurrency, on the system's real pattern; then the engine's latency at half its rate."""
    settings = Settings()
    figures = asyncio.run(
        bench_engine(settings, orders, concurrency, naive_orders, together=all_at_once)
    )
    for line in figures.lines():
        typer.echo(line)
    if record:
        command = f"otc bench engine --concurrency {concurrency} --orders {orders}" + (
            " --all-at-once" if all_at_once else ""
        )
        write_section("engine", command, figures.lines(), settings)


# ------------------------------------------------------------------------------ the REST API


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


@bench_app.command("api")
def api_command(
    orders: int = typer.Option(300, help="complete order lifecycles"),
    concurrency: int = typer.Option(30, help="lifecycles in flight at once"),
) -> None:
    """Orders/s, quote and confirm latency, projection lag, through the running REST API."""
    asyncio.run(bench_api(Settings(), orders, concurrency))
