"""`otc bench webhooks`: deliveries/s from the webhook sender to a fast local receiver.

It makes a database of its own on the running stack, starts a local receiver as a subprocess
(`python -m services.local.webhook_receiver`, answering 204 at once), registers endpoints for it,
records order events in batches as the dispatcher does (one delivery per endpoint each, many
orders with several versions, so the per-order ordering rule is in play), then lets the real
sender (PostgreSQL claims, signing, HTTP over keep-alive connections, outcomes recorded) deliver
them all. It prints the recording rate, the delivery rate, and the latency of one attempt
(sign, POST, answer) and of a delivery from its claim to its recorded outcome.
Nothing here is a test; it only prints figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import typer

from services.bench.tools import percentile, scratch_database
from services.settings import Settings
from services.webhooks.endpoints import WebhookEndpoints
from services.webhooks.model import Claim, Outcome, WebhookEvent
from services.webhooks.poster import HttpPoster
from services.webhooks.schedule import Answer, RetrySchedule
from services.webhooks.sender import Sender, SenderPolicy
from services.webhooks.signing import SecretBox, new_box_key
from services.webhooks.ssrf import UrlGuard
from services.webhooks.store import PostgresWebhookStore

RECORD_BATCH = 500


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def receiver_process(port: int) -> Iterator[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(  # noqa: S603 - our own module, fixed interpreter
        [sys.executable, "-m", "services.local.webhook_receiver", "--port", str(port), "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the local receiver did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/webhooks"
    finally:
        process.terminate()
        process.wait(timeout=10)


class Timed(PostgresWebhookStore):
    """The store, timing each delivery from its claim to its recorded outcome."""

    claimed_at: dict[tuple[uuid.UUID, uuid.UUID], float]
    spans: list[float]

    async def claim(
        self, now: datetime, *, limit: int, per_endpoint: int, lease: timedelta
    ) -> list[Claim]:
        claims = await super().claim(now, limit=limit, per_endpoint=per_endpoint, lease=lease)
        claimed = time.perf_counter()
        for claim in claims:
            self.claimed_at[claim.endpoint_id, claim.event_id] = claimed
        return claims

    async def settle_many(
        self, settled: Sequence[tuple[Claim, Outcome]]
    ) -> set[tuple[uuid.UUID, uuid.UUID]]:
        recorded = await super().settle_many(settled)
        now = time.perf_counter()
        for key in recorded:
            started = self.claimed_at.pop(key, None)
            if started is not None:
                self.spans.append(now - started)
        return recorded


@contextlib.asynccontextmanager
async def timed_store(settings: Settings) -> AsyncIterator[Timed]:
    store = Timed(settings.model_copy(update={"pg_pool_size": 8}))
    store.claimed_at, store.spans = {}, []
    async with store:
        await store.create_schema()
        yield store


def events_of(customer: uuid.UUID, orders: int, versions: int) -> list[WebhookEvent]:
    """`orders` orders of `versions` events each, interleaved as a busy log has them."""
    order_ids = [uuid.uuid4() for _ in range(orders)]
    now = datetime.now(UTC)
    return [
        WebhookEvent(
            event_id=uuid.uuid5(order, str(version)),
            customer_id=customer,
            type="order.confirmed",
            occurred_at=now,
            body=json.dumps(
                {
                    "type": "order.confirmed",
                    "timestamp": now.isoformat(),
                    "data": {"id": str(order)},
                }
            ).encode(),
            order_id=order,
            version=version,
        )
        for version in range(1, versions + 1)
        for order in order_ids
    ]


async def bench_webhooks(  # noqa: PLR0913 - the benchmark's knobs
    settings: Settings,
    *,
    deliveries: int,
    endpoints: int,
    versions: int,
    in_flight: int,
    per_endpoint: int,
) -> None:
    box = SecretBox(new_box_key())
    with scratch_database(settings, "bench_webhooks") as db, receiver_process(free_port()) as url:
        async with timed_store(db) as store:
            customer = uuid.uuid4()
            guard = UrlGuard(allow_loopback=True)
            use_cases = WebhookEndpoints(store, guard, box, max_endpoints=endpoints)
            for number in range(endpoints):
                await use_cases.register(customer, url=f"{url}/{number}")
            events = events_of(customer, max(1, deliveries // endpoints // versions), versions)
            started = time.perf_counter()
            recorded = 0
            for start in range(0, len(events), RECORD_BATCH):
                recorded += await store.record(
                    events[start : start + RECORD_BATCH], datetime.now(UTC)
                )
            record_seconds = time.perf_counter() - started

            poster = HttpPoster(guard, timeout_seconds=15.0, per_url=per_endpoint)
            attempts: list[float] = []

            async def post(target: str, headers: dict[str, str], body: bytes) -> Answer:
                began = time.perf_counter()
                answer = await poster(target, headers, body)
                attempts.append(time.perf_counter() - began)
                return answer

            policy = SenderPolicy(
                schedule=RetrySchedule(waits=(1.0,)),
                max_in_flight=in_flight,
                per_endpoint=per_endpoint,
            )
            sender = Sender(store, post, box, policy=policy)
            started = time.perf_counter()
            await sender.drain()
            seconds = time.perf_counter() - started
            await poster.aclose()

    typer.echo(
        f"webhooks: {recorded} deliveries ({len(events)} events x {endpoints} endpoints,"
        f" {versions} versions per order) to a local receiver"
    )
    typer.echo(
        f"  recorded            {recorded / record_seconds:,.0f} deliveries/s"
        f" (batches of {RECORD_BATCH} events)"
    )
    typer.echo(
        f"  delivered           {recorded / seconds:,.0f} deliveries/s in {seconds:.2f}s"
        f" ({in_flight} in flight, {per_endpoint} per endpoint)"
    )
    typer.echo(
        f"  attempt latency     p50 {percentile(attempts, 0.5) * 1000:.1f} ms"
        f"  p99 {percentile(attempts, 0.99) * 1000:.1f} ms (sign, POST, answer)"
    )
    typer.echo(
        f"  claim to outcome    p50 {percentile(store.spans, 0.5) * 1000:.1f} ms"
        f"  p99 {percentile(store.spans, 0.99) * 1000:.1f} ms"
    )
    typer.echo(f"  failed attempts     {len(attempts) - recorded}")
