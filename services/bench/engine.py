"""`otc bench engine`: commands through Kafka into the engine, against the naive peer.

It makes a database and topics of its own on the running stack, starts the engine as a
subprocess, and drives complete order lifecycles (quote, confirm, debit, approve, payout: five
commands each) the way the system sends them: each command awaits its reply before its order's
next one, `concurrency` orders in flight. Then the same at half the sustained rate, for the
latency below saturation; then the naive peer (per command one load, decide and
`Application.save`) at the same concurrency on the same database. It prints commands/s,
per-command latency percentiles and the ratio. Nothing here is a test; it only prints figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from aiokafka.admin import NewTopic

from domain import commands as c
from domain.commands import ActorRef
from domain.movements import Party
from domain.order import Side
from services import kafka
from services.adapters.fakes import FakePricing, FakeWalletBalances
from services.bench.tools import scratch_database
from services.bench.workload import Run, Sender, all_at_once, checked, closed_loop, with_cpu
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


@contextlib.asynccontextmanager
async def naive_sender(settings: Settings, concurrency: int) -> AsyncIterator[Sender]:
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

            async def send(command: c.Command) -> dict[str, float]:
                [reply] = await processor.process_one(command)
                checked(reply)
                return {}

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
            f"  where the time went, ms p50/p99 by stage:  {self.engine.breakdown()}",
            *cpu_line(self.engine, child="engine", own="the bench's clients"),
            f"naive  (one load + Application.save per command)    {self.naive.describe()}",
            *cpu_line(self.naive, child="", own="naive (in the bench's process)"),
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
            out.append(f"  where the time went, ms p50/p99 by stage:  {self.half_rate.breakdown()}")
            out.extend(cpu_line(self.half_rate, child="engine", own="the bench's clients"))
        return out


def cpu_line(run: Run, *, child: str, own: str) -> list[str]:
    if run.cpu is None:
        return []
    return [f"  {run.cpu.describe(len(run.latencies), child=child, own=own)}"]


async def bench_engine(
    settings: Settings, orders: int, concurrency: int, naive_orders: int, *, together: bool
) -> EngineFigures:
    with scratch_database(settings, "bench") as db_settings:
        async with scratch_topics(db_settings, settings.kafka_partitions) as bench_settings:
            customer = await make_customer(bench_settings)
            log_path = Path(".run") / "bench-engine.log"
            log_path.parent.mkdir(exist_ok=True)
            with engine_process(bench_settings, log_path) as process:
                async with CommandClient(bench_settings) as client:

                    async def send(command: c.Command) -> dict[str, float]:
                        answered = await client.send_timed(command, timeout=120)
                        checked(answered.reply)
                        return answered.stages()

                    # Warm-up: connections, the group join, the first batches.
                    await closed_loop(send, [lifecycle(customer) for _ in range(20)], 10)
                    work = [lifecycle(customer) for _ in range(orders)]
                    if together:
                        engine = await all_at_once(client, work, concurrency)
                        half: Run | None = None
                    else:
                        engine = await with_cpu(closed_loop(send, work, concurrency), process.pid)
                        pace = 5 / (engine.rate / 2)
                        count = max(20, min(orders, int(20 / pace)))
                        half = await with_cpu(
                            closed_loop(
                                send,
                                [lifecycle(customer) for _ in range(count)],
                                concurrency,
                                pace=pace,
                            ),
                            process.pid,
                        )
            async with naive_sender(bench_settings, concurrency) as naive_send:
                await closed_loop(naive_send, [lifecycle(customer) for _ in range(10)], 10)
                naive = await with_cpu(
                    closed_loop(
                        naive_send, [lifecycle(customer) for _ in range(naive_orders)], concurrency
                    )
                )
    workload = (
        "all at once (each order's five commands published together; not the system's pattern)"
        if together
        else "closed loop (each command awaits its reply before its order's next one)"
    )
    return EngineFigures(workload, concurrency, engine, naive, half)
