"""A PostgreSQL restart under running processes (a throwaway cluster of this module's own, so
that no other test feels it): every process rides it out without exiting, the relay and the
projector resume from their tracked positions, the gateway answers 503 problems meanwhile, and its
order-list position listener comes back so that a write is read back at once."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.order import Side
from projections.order_list.view import OrderListView
from services.auth.key_store import ApiKeyStore
from services.auth.principal import Scope
from services.command_client import CommandClient
from services.gateway.positions import LISTENING
from services.projector import open_order_list
from services.settings import Settings
from tests.conftest import unique_name
from tests.infra import ThrowawayPostgres, free_port
from tests.support import (
    Customer,
    Orderer,
    Process,
    eventually,
    make_customer,
    read_topic,
    stored_order_events,
)

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 6.0
STARTED = "PostgreSQL outage started"
ENDED = "PostgreSQL outage ended"


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayPostgres]:
    root = Path(tempfile.mkdtemp(prefix="otc-pg-outage-"))
    root.chmod(0o755)  # the postgres user must reach the cluster inside
    pg = ThrowawayPostgres(root / "cluster").create()
    try:
        yield pg
    finally:
        pg.destroy()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def outage_settings(cluster: ThrowawayPostgres, otc_settings: Settings) -> Settings:
    """This test's topics on the shared broker, its database on the throwaway cluster."""
    name = cluster.new_database(unique_name("outage").replace("-", "_"))
    return cluster.settings(otc_settings, name).model_copy(
        update={"quote_ttl_seconds": 600, "retry_max_seconds": 1.0}
    )


@pytest.fixture
async def customer(outage_settings: Settings) -> Customer:
    return await make_customer(outage_settings)


@pytest.fixture
def processes() -> Iterator[dict[str, Process]]:
    started: dict[str, Process] = {}
    try:
        yield started
    finally:
        for process in started.values():
            process.stop()


def start(
    processes: dict[str, Process], settings: Settings, module: str, ready: str, *args: str
) -> Process:
    process = Process(module, settings, *args).start()
    processes[process.name] = process
    process.wait_for_log(ready, timeout=60)
    return process


async def restart(cluster: ThrowawayPostgres, seconds: float = OUTAGE_SECONDS) -> None:
    """An immediate shutdown (every connection cut, no checkpoint), `seconds` down, a start."""
    await asyncio.to_thread(cluster.stop, "immediate")
    await asyncio.sleep(seconds)
    await asyncio.to_thread(cluster.start)


def outage_lines(process: Process) -> tuple[int, int]:
    text = process.log_path.read_text(errors="replace")
    return text.count(STARTED), text.count(ENDED)


def log_messages(process: Process) -> list[str]:
    """The messages of a process's JSON log lines (services/logs.py)."""
    lines = process.log_path.read_text(errors="replace").splitlines()
    return [json.loads(line)["message"] for line in lines if line.startswith("{")]


def still_running(*processes: Process) -> bool:
    return all(p.proc is not None and p.proc.poll() is None for p in processes)


def buy_until_debited(order: Orderer, customer: Customer) -> list[Any]:
    return [
        order.quote(Side.BUY, customer.account, customer.wallet, "100.00"),
        order.confirm(Side.BUY),
        order.debited(),
    ]


def buy_to_completion(order: Orderer, customer: Customer) -> list[Any]:
    return [*buy_until_debited(order, customer), order.approve("1.0750"), order.paid_out()]


async def test_relay_and_sweeper_ride_out_a_postgres_restart_and_every_event_is_published(
    outage_settings: Settings,
    customer: Customer,
    cluster: ThrowawayPostgres,
    processes: dict[str, Process],
) -> None:
    settings = outage_settings
    engine = start(processes, settings, "services.engine", "engine: consuming")
    relay = start(processes, settings, "services.relay", "relay: publishing")
    sweeper = start(processes, settings, "services.sweeper", "sweeper: expiring")
    before = [Orderer(customer.id) for _ in range(10)]
    during = [Orderer(customer.id) for _ in range(10)]
    async with CommandClient(settings) as client:
        for order in before:
            assert all(r.ok for r in await client.send_all(buy_until_debited(order, customer)))
        outage = asyncio.create_task(restart(cluster))
        await asyncio.sleep(1.0)
        for order in during:  # published while the database is down: handled once it is back
            for command in buy_until_debited(order, customer):
                await client.publish(command)
        await outage

    async def published() -> list[dict[str, Any]]:
        records = await read_topic(settings, settings.events_topic)
        envelopes = [json.loads(r.value) for r in records]
        return envelopes if len({e["eventId"] for e in envelopes}) >= 60 else []

    envelopes = await eventually(published, timeout=90)
    stored = {(str(o), v) for o, v, _ in stored_order_events(settings)}
    assert {(e["orderId"], e["version"]) for e in envelopes} == stored
    first_seen: dict[str, list[int]] = defaultdict(list)
    for envelope in envelopes:
        if envelope["version"] not in first_seen[envelope["orderId"]]:
            first_seen[envelope["orderId"]].append(envelope["version"])
    assert all(versions == [1, 2, 3] for versions in first_seen.values())
    assert still_running(engine, relay, sweeper)
    await eventually(lambda: outage_lines(relay) == (1, 1) and outage_lines(sweeper) == (1, 1))


async def test_projector_resumes_from_its_tracked_position_after_a_postgres_restart(
    outage_settings: Settings,
    customer: Customer,
    cluster: ThrowawayPostgres,
    processes: dict[str, Process],
) -> None:
    settings = outage_settings
    start(processes, settings, "services.engine", "engine: consuming")
    projector = start(processes, settings, "services.projector", "projector: following")
    orders = [Orderer(customer.id) for _ in range(30)]
    async with CommandClient(settings) as client:
        for order in orders[:10]:
            assert all(r.ok for r in await client.send_all(buy_to_completion(order, customer)))
        outage = asyncio.create_task(restart(cluster))
        await asyncio.sleep(1.0)
        for order in orders[10:]:
            for command in buy_to_completion(order, customer):
                await client.publish(command)
        await outage

    view = await asyncio.to_thread(open_order_list, settings)
    try:
        rows = await eventually(lambda: completed_rows(view, orders), timeout=90)
    finally:
        view.close()
    assert len(rows) == 30
    assert {row.view.status for row in rows} == {"completed"}
    assert {row.version for row in rows} == {5}
    assert still_running(projector)
    assert outage_lines(projector) == (1, 1)
    resumed = [
        int(message.rsplit("position ", 1)[1].rstrip(")"))
        for message in log_messages(projector)
        if "projector: following" in message
    ]
    assert len(resumed) == 2
    assert resumed[0] == 0
    assert resumed[1] > 0, "the second runner resumed from the view's tracked position"


def completed_rows(view: OrderListView, orders: list[Orderer]) -> list[Any]:
    rows = view.get_many([o.order_id for o in orders])
    done = [row for row in rows.values() if row.view.status == "completed"]
    return done if len(done) == len(orders) else []


async def test_gateway_answers_503_problems_while_postgres_is_down_and_recovers(
    outage_settings: Settings,
    customer: Customer,
    cluster: ThrowawayPostgres,
    processes: dict[str, Process],
) -> None:
    port = free_port()
    settings = outage_settings.model_copy(update={"gateway_port": port})
    start(processes, settings, "services.engine", "engine: consuming")
    start(processes, settings, "services.gateway", "gateway: listening")
    key = await api_key(settings, customer)
    seen: list[tuple[int, str]] = []
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers={"x-api-key": key}, timeout=30
    ) as http:

        async def accounts() -> httpx.Response:
            response = await http.get("/otc-exchanges/accounts")
            seen.append((response.status_code, response.headers.get("content-type", "")))
            return response

        assert (await accounts()).status_code == 200
        assert (await http.get("/ready")).status_code == 200
        await asyncio.to_thread(cluster.stop, "immediate")
        try:
            refused = await eventually(lambda: answered(accounts, 503), timeout=30, interval=0.5)
            not_ready = await http.get("/ready")
        finally:
            await asyncio.to_thread(cluster.start)
        await eventually(lambda: answered(accounts, 200), timeout=30, interval=0.5)
        ready = await eventually(lambda: answered(lambda: http.get("/ready"), 200), timeout=30)

    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "SERVICE_UNAVAILABLE"
    assert refused.headers["retry-after"] == str(settings.retry_after_seconds)
    assert not_ready.status_code == 503
    assert not_ready.headers["retry-after"] == str(settings.retry_after_seconds)
    assert not_ready.json()["checks"]["database"].startswith("failing")
    assert ready.json()["lags"]["relay"] is not None
    assert all(status in {200, 503} for status, _ in seen), seen
    assert all("json" in content_type for _, content_type in seen), seen


async def test_after_a_postgres_restart_a_write_is_read_back_without_waiting_out_its_bound(
    outage_settings: Settings,
    customer: Customer,
    cluster: ThrowawayPostgres,
    processes: dict[str, Process],
) -> None:
    """The gateway's position listener comes back with PostgreSQL: a write's answer is woken by
    the projector's announcement, long before its (here very long) read-your-writes bound."""
    bound = 15.0
    port = free_port()
    settings = outage_settings.model_copy(
        update={"gateway_port": port, "read_your_writes_seconds": bound}
    )
    start(processes, settings, "services.engine", "engine: consuming")
    start(processes, settings, "services.projector", "projector: following")
    gateway = start(processes, settings, "services.gateway", "gateway: listening")
    gateway.wait_for_log(LISTENING)
    key = await api_key(settings, customer)
    body = {
        "side": "buy",
        "sourceAccountId": str(customer.account),
        "destinationWalletId": str(customer.wallet),
        "sourceAmount": "100.00",
    }
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers={"x-api-key": key}, timeout=bound * 2
    ) as http:
        await restart(cluster)
        loop = asyncio.get_running_loop()

        async def quoted() -> tuple[httpx.Response, float] | None:
            started = loop.time()
            response = await http.post("/otc-exchanges/quote", json=body)
            return (response, loop.time() - started) if response.status_code == 200 else None

        await eventually(quoted, timeout=60, interval=0.5)  # the system is back
        writes = [await quoted() for _ in range(3)]
        shown = [
            await http.get(f"/otc-exchanges/{write[0].json()['id']}") for write in writes if write
        ]
        await eventually(lambda: listened(gateway) >= 2, timeout=15)  # the listener is back

    assert all(write is not None and write[1] < bound / 3 for write in writes), writes
    assert [response.status_code for response in shown] == [200, 200, 200]


def listened(gateway: Process) -> int:
    """How many times the gateway's position listener connected."""
    return gateway.log_path.read_text(errors="replace").count(LISTENING)


async def answered(call: Any, status: int) -> httpx.Response | None:  # noqa: ANN401 - a request
    response: httpx.Response = await call()
    return response if response.status_code == status else None


async def api_key(settings: Settings, customer: Customer) -> str:
    async with ApiKeyStore(settings) as keys:
        await keys.create_schema()
        plaintext, _ = await keys.create(customer.id, [Scope.READ, Scope.WRITE], "outage test")
    return plaintext


async def test_a_sandbox_started_while_postgres_is_down_waits_and_serves_once_it_is_back(
    outage_settings: Settings, cluster: ThrowawayPostgres, processes: dict[str, Process]
) -> None:
    """A sandbox the supervisor restarts in the middle of an outage: it must not fail its
    startup (nor hang half-started, as one did with its failed pool left open)."""
    port = free_port()
    await asyncio.to_thread(cluster.stop, "immediate")
    try:
        bank = Process(
            "services.local.sandbox", outage_settings, "bank", "--port", str(port)
        ).start()
        processes[bank.name] = bank
        bank.wait_for_log(STARTED, timeout=30)
        await asyncio.sleep(2.0)
        assert still_running(bank)
    finally:
        await asyncio.to_thread(cluster.start)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

        async def health() -> httpx.Response | None:
            try:
                return await answered(lambda: http.get("/health"), 200)
            except httpx.TransportError:
                return None

        await eventually(health, timeout=60, interval=0.5)
    assert outage_lines(bank) == (1, 1)
