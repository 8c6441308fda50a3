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
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import typer
from aiokafka.admin import NewTopic

from domain import commands as c
from domain.commands import ActorRef
from domain.movements import Party
from domain.order import Side
from services import kafka
from services.adapters.fakes import FakePricing, FakeWalletBalances
from services.bench.tools import percentile, scratch_database
from services.command_client import CommandClient
from services.commanding import new_command
from services.engine.__main__ import policy_of
from services.engine.event_store import open_orders
from services.engine.processor import CommandProcessor
from services.resources.store import PostgresResourceDirectory
from services.settings import Settings

OPERATOR = ActorRef.operator(uuid.UUID(int=0xBE4C), "Bench Operator")
TREASURY = ActorRef.system(Party.EUR_TREASURY)
CHAIN = ActorRef.system(Party.USDC_CHAIN)


@dataclass(frozen=True)
class BenchCustomer:
    id: uuid.UUID
    account: uuid.UUID
    wallet: uuid.UUID


def lifecycle(customer: BenchCustomer) -> list[c.Command]:
    order_id, customer_id = uuid.uuid4(), customer.id
    me = ActorRef.customer(customer_id)
    return [
        new_command(
            c.RequestQuote,
            order_id=order_id,
            customer_id=customer_id,
            actor=me,
            side=Side.BUY,
            source_id=customer.account,
            destination_id=customer.wallet,
            source_amount=Decimal("100.00"),
        ),
        new_command(
            c.ConfirmQuote, order_id=order_id, customer_id=customer_id, actor=me, side=Side.BUY
        ),
        new_command(
            c.RecordSourceDebit,
            order_id=order_id,
            customer_id=customer_id,
            actor=TREASURY,
            reference=f"bench-debit-{order_id}",
        ),
        new_command(
            c.ApproveOrder,
            order_id=order_id,
            customer_id=customer_id,
            actor=OPERATOR,
            rate=Decimal("1.0750"),
        ),
        new_command(
            c.RecordPayout,
            order_id=order_id,
            customer_id=customer_id,
            actor=CHAIN,
            attempt=1,
            reference=f"bench-payout-{order_id}",
        ),
    ]


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


async def drive(
    settings: Settings, orders: list[list[c.Command]], concurrency: int
) -> tuple[float, list[float]]:
    """Each order's five commands published in order, `concurrency` orders at a time; the
    latency of a command is from the publication of its order's commands to the last reply."""
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)
    async with CommandClient(settings) as client:

        async def one_order(commands: list[c.Command]) -> None:
            async with gate:
                sent = time.perf_counter()
                replies = await client.send_all(commands, timeout=120)
                latencies.extend([time.perf_counter() - sent] * len(commands))
                refused = [reply.error for reply in replies if not reply.ok]
                if refused:
                    raise RuntimeError(f"command refused: {refused[0]}")

        await one_order(orders[0])  # warm-up: connections, group join, first batch
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(one_order(commands) for commands in orders[1:]))
        return time.perf_counter() - started, latencies


async def naive(settings: Settings, orders: list[list[c.Command]]) -> float:
    """One load, decide and `Application.save` per command, in sequence. Returns seconds."""
    app = open_orders(settings)
    async with PostgresResourceDirectory(settings) as resources:
        processor = CommandProcessor(
            app,
            pricing=FakePricing(),
            balances=FakeWalletBalances(),
            resources=resources,
            policy=policy_of(settings),
            clock=lambda: datetime.now(UTC),
        )
        started = time.perf_counter()
        for commands in orders:
            for command in commands:
                [reply] = await processor.process_one(command)
                if not reply.ok:
                    raise RuntimeError(f"command refused: {reply.error}")
        elapsed = time.perf_counter() - started
    app.close()
    return elapsed


async def bench_engine(
    settings: Settings, commands: int, concurrency: int, naive_commands: int
) -> None:
    order_count = max(2, commands // 5)
    with scratch_database(settings, "bench") as db_settings:
        async with scratch_topics(db_settings, settings.kafka_partitions) as bench_settings:
            customer = await make_customer(bench_settings)
            orders = [lifecycle(customer) for _ in range(order_count + 1)]
            log_path = Path(".run") / "bench-engine.log"
            log_path.parent.mkdir(exist_ok=True)
            with engine_process(bench_settings, log_path):
                seconds, latencies = await drive(bench_settings, orders, concurrency)
            naive_orders = [lifecycle(customer) for _ in range(max(1, naive_commands // 5))]
            naive_seconds = await naive(bench_settings, naive_orders)
    sent = len(latencies)
    rate = sent / seconds
    naive_rate = len(naive_orders) * 5 / naive_seconds
    typer.echo(f"engine (Kafka in, batched saves): {sent} commands in {seconds:.2f}s")
    typer.echo(f"  sustained           {rate:,.0f} commands/s")
    typer.echo(
        f"  reply latency       p50 {percentile(latencies, 0.50) * 1000:.1f} ms"
        f"  p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
        f"  mean {statistics.fmean(latencies) * 1000:.1f} ms",
    )
    typer.echo(f"naive (one Application.save per command): {len(naive_orders) * 5} commands")
    typer.echo(f"  sustained           {naive_rate:,.0f} commands/s")
    typer.echo(f"ratio                 {rate / naive_rate:.1f}x")
