"""The chaos campaign: mixed orders through the REST API while the infrastructure misbehaves.

The whole system runs under its supervisor on a PostgreSQL cluster and a Kafka broker of the
campaign's own (tests/infra.py), so that restarting them disturbs nothing else. Clients drive
buys and sells as real clients would: quote, confirm with an Idempotency-Key, then an operator
approves or rejects, or the customer cancels; on a timeout, a refused connection or a 5xx they
retry with the same key. Meanwhile, at random moments, the campaign

- SIGKILLs every kind of process, by its exact pid (from the supervisor's state file),
- restarts the Kafka broker, restarts PostgreSQL at once ("immediate"), and holds PostgreSQL
  down for a minute,
- delivers twice: republishes a range of the event log and re-sends commands already answered.

At the end it waits for every order to settle and prints one table: orders and their final
statuses, faults by kind, orders lost (a step answered 2xx whose event is not stored), duplicated
(an event stored twice, or an order no client heard of), stuck (not final), wrong (final, but not
what the client asked), the reconciliation of the ledgers with every history (double movements,
stray or missing ones), conservation, and 5xx answers outside the outages. Any loss, duplicate,
stuck order, double movement or non-conservation fails the campaign.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
from pydantic import SecretStr

from domain.errors import ErrorCode
from domain.order import FINAL, Order, Status
from services.cli.audit import republish_range
from services.cli.check import conservation, reconcile_report
from services.engine.event_store import open_orders
from services.local.demo import DemoCustomer, DemoData, load_demo
from services.local.places import Places, read_state
from services.settings import Settings
from tests.infra import ThrowawayKafka, ThrowawayPostgres, free_port
from tests.support import Process

PROCESS_KINDS = (
    "provider",
    "bank",
    "chain",
    "engine",
    "relay",
    "sweeper",
    "eur-treasury",
    "usdc-chain",
    "projector",
    "gateway",
    "webhooks",
)
ONCE_ONLY = (
    "Quoted",
    "Confirmed",
    "SourceDebited",
    "Approved",
    "Rejected",
    "Refunded",
    "PaidOut",
    "Cancelled",
)
EXPECTED = {
    "approve": {"completed"},
    "reject": {"rejected"},
    # A cancel an outage held up past the quote's expiry finds the order expired (409
    # NOT_CANCELLABLE): what the customer wanted, nothing moved, nothing will.
    "cancel": {"cancelled", "expired"},
}
SETTLED = frozenset({*(status.value for status in FINAL), Status.EXPIRED.value})
"""Where an order of the campaign rests: a final status, or a quote that lapsed."""
EVENT_OF_STEP = {
    "quote": "Quoted",
    "confirm": "Confirmed",
    "approve": "Approved",
    "reject": "Rejected",
    "cancel": "Cancelled",
}
GAP_SECONDS = (1.0, 4.0)
"""Seconds between two faults, drawn uniformly."""
REQUOTES = 3
"""How many times a client requotes an order whose quote expired before its confirm went through."""
OUTAGE_GRACE_SECONDS = 20.0
"""After an outage ends, how long answers may still be 5xx (pools and consumers recovering)."""


@dataclass(frozen=True)
class Campaign:
    orders: int = 60
    concurrency: int = 12
    seed: int = 1
    pg_outage_seconds: float = 60.0
    broker_restarts: int = 1
    rounds: int = 1
    """How many times each fault kind strikes."""
    settle_seconds: float = 240.0
    """How long after the last fault every order has to be final."""


@dataclass
class Tally:
    """What the clients saw."""

    acknowledged: dict[str, set[str]] = field(default_factory=dict)
    """order id -> the steps answered 2xx."""
    intents: dict[str, str] = field(default_factory=dict)
    """order id -> approve, reject or cancel."""
    confirms: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(customer key, order id, side, Idempotency-Key) of every confirm sent."""
    server_errors: list[tuple[float, str, int]] = field(default_factory=list)
    failed_clients: list[str] = field(default_factory=list)
    requotes: int = 0
    lapsed_cancels: int = 0
    """Cancels refused NOT_CANCELLABLE because an outage held them up until the quote expired."""
    """Confirms refused QUOTE_EXPIRED (the quote outlived by an outage), requoted and resent."""


@dataclass
class Faults:
    """What the campaign did, and when the infrastructure was away."""

    done: Counter[str] = field(default_factory=Counter)
    outages: list[tuple[float, float]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    def outage(self, started: float, ended: float) -> None:
        self.outages.append((started, ended + OUTAGE_GRACE_SECONDS))

    def during_outage(self, moment: float) -> bool:
        return any(start <= moment <= end for start, end in self.outages)


class Client:
    """A client that retries a request with the same Idempotency-Key until it gets an answer
    that is not a 5xx (or gives up after `patience` seconds)."""

    def __init__(self, base_url: str, tally: Tally, patience: float = 300.0) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30)
        self.tally = tally
        self.patience = patience

    async def call(
        self,
        method: str,
        path: str,
        key: str,
        *,
        json: Mapping[str, object] | None = None,
        idempotency: str | None = None,
    ) -> httpx.Response:
        headers = {"x-api-key": key}
        if idempotency is not None:
            headers["Idempotency-Key"] = idempotency
        deadline = time.monotonic() + self.patience
        pause = 0.2
        while True:
            try:
                response = await self.http.request(method, path, json=json, headers=headers)
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code < 500:
                return response
            if response is not None:
                self.tally.server_errors.append((time.monotonic(), path, response.status_code))
            if time.monotonic() > deadline:
                raise RuntimeError(f"{method} {path}: no answer in {self.patience:.0f}s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

    async def close(self) -> None:
        await self.http.aclose()


async def one_order(
    client: Client, demo: DemoData, customer: DemoCustomer, rng: random.Random, tally: Tally
) -> None:
    side = rng.choice(["buy", "sell"])
    intent = rng.choices(["approve", "reject", "cancel"], weights=[7, 2, 1])[0]
    body = (
        {
            "side": "buy",
            "sourceAccountId": customer.active_account,
            "destinationWalletId": customer.ethereum_wallet,
            "sourceAmount": "100.00",
        }
        if side == "buy"
        else {
            "side": "sell",
            "sourceWalletId": customer.polygon_wallet,
            "destinationAccountId": customer.active_account,
            "sourceAmount": "100.000000",
        }
    )
    quote_key = str(uuid.uuid4())
    quoted = await client.call(
        "POST", "/otc-exchanges/quote", customer.write_key, json=body, idempotency=quote_key
    )
    answered(quoted)
    order_id: str = quoted.json()["id"]
    tally.intents[order_id] = intent
    steps = tally.acknowledged.setdefault(order_id, set())
    steps.add("quote")
    if intent == "cancel":
        cancelled = await client.call(
            "POST",
            f"/otc-exchanges/{order_id}/cancel",
            customer.write_key,
            idempotency=str(uuid.uuid4()),
        )
        if lapsed(cancelled):
            tally.lapsed_cancels += 1
            return
        answered(cancelled)
        steps.add("cancel")
        return
    for _ in range(REQUOTES + 1):
        confirm_key = str(uuid.uuid4())
        confirmed = await client.call(
            "POST",
            "/otc-exchanges",
            customer.write_key,
            json={"quoteId": order_id, "side": side},
            idempotency=confirm_key,
        )
        tally.confirms.append((customer.write_key, order_id, side, confirm_key))
        if not expired(confirmed):
            break
        # An outage outlasted the quote: a real client asks for a fresh rate and confirms that.
        tally.requotes += 1
        requoted = await client.call(
            "POST",
            f"/otc-exchanges/{order_id}/requote",
            customer.write_key,
            idempotency=str(uuid.uuid4()),
        )
        answered(requoted)
    answered(confirmed)
    steps.add("confirm")
    await until_status(client, customer.write_key, order_id, {"pending_approval"})
    decided = await client.call(
        "POST",
        f"/ops/otc-exchanges/{order_id}/{intent}",
        demo.operator_key,
        idempotency=str(uuid.uuid4()),
    )
    answered(decided)
    steps.add(intent)


def refused(response: httpx.Response, status: HTTPStatus, code: ErrorCode) -> bool:
    """The gateway answered this refusal (a client reacts to it rather than giving up)."""
    return response.status_code == status and response.json().get("code") == code


def expired(response: httpx.Response) -> bool:
    """A confirm whose quote an outage outlived."""
    return refused(response, HTTPStatus.BAD_REQUEST, ErrorCode.QUOTE_EXPIRED)


def lapsed(response: httpx.Response) -> bool:
    """A cancel an outage held up until the quote expired."""
    return refused(response, HTTPStatus.CONFLICT, ErrorCode.NOT_CANCELLABLE)


def answered(response: httpx.Response) -> None:
    """A 4xx ends the client: say which request, what status and what the gateway said."""
    if response.is_error:
        request = response.request
        raise RuntimeError(
            f"{request.method} {request.url.path}: {response.status_code} {response.text[:300]}"
        )


async def until_status(
    client: Client,
    key: str,
    order_id: str,
    statuses: set[str],
    timeout: float = 600.0,  # noqa: ASYNC109
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await client.call("GET", f"/otc-exchanges/{order_id}", key)
        status: str = found.json().get("status", "")
        if status in statuses:
            return status
        await asyncio.sleep(0.5)
    raise RuntimeError(f"order {order_id} never reached {statuses}")


# ------------------------------------------------------------------------------------ faults


class Saboteur:
    def __init__(  # noqa: PLR0913 - the campaign's moving parts
        self,
        *,
        campaign: Campaign,
        places: Places,
        postgres: ThrowawayPostgres,
        kafka: ThrowawayKafka,
        settings: Settings,
        client: Client,
        demo: DemoData,
        faults: Faults,
    ) -> None:
        self.campaign = campaign
        self.places = places
        self.postgres = postgres
        self.kafka = kafka
        self.settings = settings
        self.client = client
        self.demo = demo
        self.faults = faults

    def plan(self, rng: random.Random) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        rounds = self.campaign.rounds
        plan: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        for _ in range(rounds):
            plan.extend((f"kill {kind}", self.killer(kind)) for kind in PROCESS_KINDS)
            plan.append(("postgres immediate restart", self.restart_postgres))
            plan.append(("postgres outage", self.postgres_outage))
            plan.append(("republish events", self.republish))
            plan.append(("resend commands", self.resend))
        plan.extend(
            ("broker restart", self.restart_broker)
            for _ in range(self.campaign.broker_restarts * rounds)
        )
        rng.shuffle(plan)
        return plan

    def expected_seconds(self, plan: list[tuple[str, Callable[[], Awaitable[None]]]]) -> float:
        """About how long the plan takes: the gaps between faults and the faults themselves."""
        lasting = {
            "postgres outage": self.campaign.pg_outage_seconds,
            "postgres immediate restart": 5.0,
            "broker restart": 15.0,
        }
        gap = sum(GAP_SECONDS) / 2
        return sum(gap + lasting.get(name, 1.0) for name, _ in plan)

    async def run(
        self, rng: random.Random, plan: list[tuple[str, Callable[[], Awaitable[None]]]]
    ) -> None:
        """Strike the planned faults one after another, a few seconds apart, while orders flow."""
        for name, strike in plan:
            await asyncio.sleep(rng.uniform(*GAP_SECONDS))
            self.faults.log.append(f"{time.strftime('%H:%M:%S')} {name}")
            await strike()
            self.faults.done[name.split(" ")[0] if name.startswith("kill") else name] += 1

    def killer(self, kind: str) -> Callable[[], Awaitable[None]]:
        async def kill() -> None:
            state = read_state(self.places) or {}
            for child in state.get("children", []):
                if child["kind"] == kind and child["pid"]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child["pid"], signal.SIGKILL)
                    if kind in {"gateway", "provider", "bank", "chain"}:
                        now = time.monotonic()
                        self.faults.outage(now, now + 5.0)  # restarted within seconds
                    return

        return kill

    async def restart_postgres(self) -> None:
        started = time.monotonic()
        await asyncio.to_thread(self.postgres.stop, "immediate")
        await asyncio.to_thread(self.postgres.start)
        self.faults.outage(started, time.monotonic())

    async def postgres_outage(self) -> None:
        started = time.monotonic()
        await asyncio.to_thread(self.postgres.stop, "immediate")
        await asyncio.sleep(self.campaign.pg_outage_seconds)
        await asyncio.to_thread(self.postgres.start)
        self.faults.outage(started, time.monotonic())

    async def restart_broker(self) -> None:
        started = time.monotonic()
        await asyncio.to_thread(self.kafka.stop)
        await asyncio.to_thread(self.kafka.start)
        self.faults.outage(started, time.monotonic())

    async def republish(self) -> None:
        """Deliver a range of the event log a second time to every consumer."""
        with contextlib.suppress(psycopg.OperationalError):
            last = last_position(self.settings)
            await republish_range(self.settings, max(1, last - 200), last)

    async def resend(self) -> None:
        """Send again, with their keys, confirms already answered: nothing may act twice."""
        for key, order_id, side, idempotency in self.client.tally.confirms[-10:]:
            await self.client.call(
                "POST",
                "/otc-exchanges",
                key,
                json={"quoteId": order_id, "side": side},
                idempotency=idempotency,
            )


def last_position(settings: Settings) -> int:
    with psycopg.connect(settings.conninfo()) as conn:
        row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM orders_events").fetchone()
    return int(row[0]) if row is not None else 0


# ------------------------------------------------------------------------------------ verdict


@dataclass(frozen=True)
class Verdict:
    rows: list[tuple[str, str]]
    failed: bool
    suspects: list[str] = field(default_factory=list)
    """Orders lost, duplicated, stuck or wrong: the ones the evidence is about."""
    evidence: str = ""
    """On failure: the faults with their times, and each suspect's stored history and log lines."""

    def table(self) -> str:
        width = max(len(name) for name, _ in self.rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in self.rows)


def verdict(  # noqa: PLR0913 - everything the table says
    *,
    stored: dict[str, Counter[str]],
    tally: Tally,
    faults: Faults,
    statuses: dict[str, str],
    reconciliation: dict[str, Any],
    conserved: dict[str, Any],
    seconds: float,
) -> Verdict:
    lost = sorted(
        order_id
        for order_id, steps in tally.acknowledged.items()
        if any(EVENT_OF_STEP[step] not in stored.get(order_id, Counter()) for step in steps)
    )
    duplicated = sorted(
        order_id
        for order_id, events in stored.items()
        if any(events[name] > 1 for name in ONCE_ONLY)
    )
    # An order no client ever heard of: a quote request applied twice under one key.
    duplicated += sorted(set(stored) - set(tally.intents))
    stuck = sorted(order_id for order_id, status in statuses.items() if status not in SETTLED)
    wrong = sorted(
        order_id
        for order_id, status in statuses.items()
        if status in SETTLED and status not in EXPECTED[tally.intents[order_id]]
    )
    errors = [e for e in tally.server_errors if not faults.during_outage(e[0])]
    mismatches = reconciliation["mismatches"]
    rows = [
        ("orders", str(len(statuses))),
        (
            "final statuses",
            ", ".join(f"{k} {v}" for k, v in sorted(Counter(statuses.values()).items())),
        ),
        ("faults", ", ".join(f"{k} {v}" for k, v in sorted(faults.done.items()))),
        ("lost", str(len(lost)) + (f" {lost[:3]}" if lost else "")),
        ("duplicated", str(len(duplicated)) + (f" {duplicated[:3]}" if duplicated else "")),
        ("stuck", str(len(stuck)) + (f" {stuck[:3]}" if stuck else "")),
        ("wrong final status", str(len(wrong)) + (f" {wrong[:3]}" if wrong else "")),
        (
            "double or stray movements",
            str(len(mismatches)) + (f" {mismatches[:2]}" if mismatches else ""),
        ),
        ("movements booked", str(reconciliation["movementsBooked"])),
        ("money conserved", "yes" if conserved["conserved"] else "NO"),
        ("5xx outside outages", f"{len(errors)}" + (f" {errors[:3]}" if errors else "")),
        ("5xx during outages", str(len(tally.server_errors) - len(errors))),
        ("quotes outlived by an outage, requoted", str(tally.requotes)),
        ("cancels that found the quote expired", str(tally.lapsed_cancels)),
        (
            "clients that gave up",
            str(len(tally.failed_clients))
            + (f" {tally.failed_clients[:2]}" if tally.failed_clients else ""),
        ),
        ("seconds", f"{seconds:.0f}"),
    ]
    failed = bool(lost or duplicated or stuck or wrong or mismatches or tally.failed_clients) or (
        not conserved["conserved"]
    )
    suspects = sorted({*lost, *duplicated, *stuck, *wrong})
    return Verdict(rows, failed, suspects)


def stored_events(settings: Settings) -> dict[str, Counter[str]]:
    with psycopg.connect(settings.conninfo()) as conn:
        rows = conn.execute(
            "SELECT originator_id, topic FROM orders_events WHERE topic LIKE %s", ("%Order.%",)
        ).fetchall()
    found: dict[str, Counter[str]] = {}
    for originator_id, topic in rows:
        found.setdefault(str(originator_id), Counter())[topic.rsplit(".", 1)[-1]] += 1
    return found


# ------------------------------------------------------------------------------------ the run


def prepare(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # the postgres user must reach the cluster inside


@contextlib.asynccontextmanager
async def chaos_stack(
    root: Path, base: Settings
) -> AsyncIterator[tuple[ThrowawayPostgres, ThrowawayKafka, Settings]]:
    await asyncio.to_thread(prepare, root)
    postgres = await asyncio.to_thread(ThrowawayPostgres(root / "postgres").create)
    kafka = await asyncio.to_thread(ThrowawayKafka(root / "kafka").create)
    try:
        topics = {
            "commands_topic": "otc.commands",
            "replies_topic": "otc.replies",
            "events_topic": "otc.order-events",
            "dlq_topic": "otc.commands.dlq",
            "events_dlq_topic": "otc.order-events.dlq",
        }
        await kafka.create_topics(6, *topics.values())
        ports = {name: free_port() for name in ("provider", "bank", "chain", "gateway")}
        admin = kafka.admin_settings()
        settings = postgres.settings(base).model_copy(
            update={
                **topics,
                "kafka_bootstrap": kafka.bootstrap,
                "kafka_partitions": 6,
                "provider_url": f"http://127.0.0.1:{ports['provider']}",
                "bank_url": f"http://127.0.0.1:{ports['bank']}",
                "chain_url": f"http://127.0.0.1:{ports['chain']}",
                "gateway_port": ports["gateway"],
                "quote_ttl_seconds": 600,
                "upstreams": "sandbox",
                "jwt_secret": SecretStr(uuid.uuid4().hex * 2),
                "ready_max_consumer_lag": 100_000,
                "kafka_username": admin.kafka_username,
                "kafka_password": admin.kafka_password,
            }
        )
        yield postgres, kafka, settings
    finally:
        await asyncio.to_thread(kafka.destroy)
        await asyncio.to_thread(postgres.destroy)


async def run_campaign(campaign: Campaign, base: Settings, root: Path) -> Verdict:
    rng = random.Random(campaign.seed)
    async with chaos_stack(root, base) as (postgres, kafka, settings):
        places = Places(root / "system")
        supervisor = Process(
            "services.local.supervisor",
            settings,
            "--no-demo",
            "--state-dir",
            str(places.root),
            name="chaos-supervisor",
        )
        supervisor.start()
        try:
            supervisor.wait_for_log("running:", timeout=180)
            demo = await load_demo(settings)
            tally, faults = Tally(), Faults()
            client = Client(f"http://127.0.0.1:{settings.gateway_port}", tally)
            saboteur = Saboteur(
                campaign=campaign,
                places=places,
                postgres=postgres,
                kafka=kafka,
                settings=settings,
                client=client,
                demo=demo,
                faults=faults,
            )
            plan = saboteur.plan(rng)
            spread = saboteur.expected_seconds(plan) / campaign.orders
            started = time.monotonic()
            gate = asyncio.Semaphore(campaign.concurrency)

            async def order(n: int) -> None:
                await asyncio.sleep(n * spread)  # orders arrive through the whole plan
                async with gate:
                    customer = demo.customers[n % len(demo.customers)]
                    try:
                        await one_order(client, demo, customer, random.Random(rng.random()), tally)
                    except Exception as error:  # noqa: BLE001 - counted, the campaign goes on
                        tally.failed_clients.append(
                            f"{time.strftime('%H:%M:%S')} {type(error).__name__}: {error}"[:400]
                        )

            sabotage = asyncio.create_task(saboteur.run(rng, plan))
            await asyncio.gather(*(order(n) for n in range(campaign.orders)))
            await sabotage
            statuses = await settle(settings, list(tally.intents), campaign.settle_seconds)
            seconds = time.monotonic() - started
            behind = await read_model_disagreements(settings, statuses)
            reconciliation = await reconcile_report(settings)
            conserved = await conservation(settings)
            await client.close()
            found = verdict(
                stored=stored_events(settings),
                tally=tally,
                faults=faults,
                statuses=statuses,
                reconciliation=reconciliation,
                conserved=conserved,
                seconds=seconds,
            )
            found.rows.insert(-2, ("order list behind its history", str(len(behind))))
            failed = found.failed or bool(behind)
            evidence = (
                await asyncio.to_thread(gather_evidence, settings, places, faults, found.suspects)
                if failed
                else ""
            )
            return Verdict(found.rows, failed, found.suspects, evidence)
        finally:
            supervisor.stop()


async def settle(settings: Settings, order_ids: list[str], timeout: float) -> dict[str, str]:  # noqa: ASYNC109
    """Each order's status in the event store once every one is settled (or when time is up)."""
    orders = await asyncio.to_thread(open_orders, settings)
    try:
        deadline = time.monotonic() + timeout
        while True:
            found = await asyncio.to_thread(orders.load_many, [UUID(i) for i in order_ids])
            statuses = {
                str(i): order.status.value for i, order in found.items() if isinstance(order, Order)
            }
            done = all(statuses.get(i) in SETTLED for i in order_ids)
            if done or time.monotonic() > deadline:
                return {i: statuses.get(i, "missing") for i in order_ids}
            await asyncio.sleep(1.0)
    finally:
        orders.close()


def gather_evidence(
    settings: Settings, places: Places, faults: Faults, suspects: list[str], lines: int = 25
) -> str:
    """What someone reading a red campaign in CI needs without the stack it ran on: when each
    fault struck, and for a few suspect orders their stored events and the log lines naming them."""
    out = ["faults struck:", *(f"  {entry}" for entry in faults.log)]
    logs = sorted(places.logs.glob("*.log"))
    with psycopg.connect(settings.conninfo()) as conn:
        for order_id in suspects[:3]:
            out.append(f"order {order_id}:")
            rows = conn.execute(
                "SELECT originator_version, topic, state FROM orders_events"
                " WHERE originator_id = %s ORDER BY originator_version",
                (order_id,),
            ).fetchall()
            out.extend(f"  v{version} {topic.rsplit('.', 1)[-1]}" for version, topic, _ in rows)
            for log in logs:
                named = [
                    line.rstrip()
                    for line in log.read_text(errors="replace").splitlines()
                    if order_id in line
                ]
                out.extend(f"  {log.stem}: {line[:300]}" for line in named[-lines:])
    return "\n".join(out)


async def read_model_disagreements(settings: Settings, statuses: dict[str, str]) -> list[str]:
    """Orders whose row in the order list does not show the status of their history, once the
    projector has had a moment to catch up."""
    for _ in range(60):
        with psycopg.connect(settings.conninfo()) as conn:
            rows: dict[str, str] = dict(
                conn.execute("SELECT id::text, status FROM order_list").fetchall()
            )
        behind = sorted(i for i, status in statuses.items() if rows.get(i) != status)
        if not behind:
            return []
        await asyncio.sleep(1.0)
    return behind
