"""Helpers for integration and end-to-end tests: processes, command builders, topics."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from aiokafka import TopicPartition

from domain import commands as c
from domain.commands import ActorRef
from domain.movements import MOVERS
from domain.order import Leg, Side
from services import kafka
from services.commanding import new_command
from services.resources.store import PostgresResourceDirectory
from services.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / ".run" / "test-logs"
STACK = ROOT / "deploy" / "local" / "stack.py"


class Process:
    """A service started as a real subprocess (`python -m MODULE`), its output in a log file."""

    def __init__(
        self,
        module: str,
        settings: Settings,
        *args: str,
        name: str | None = None,
    ) -> None:
        self.module = module
        self.args = args
        self.settings = settings
        self.name = name or (args[0] if args else module.rsplit(".", 1)[-1])
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"{self.name}-{uuid.uuid4().hex[:8]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        env = {**os.environ, **self.settings.to_env(), "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own module with a fixed interpreter
                [sys.executable, "-m", self.module, *self.args],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up, no flush, like a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_path.read_text(errors="replace"):
                return
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not log {text!r}; log:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def running(module: str, settings: Settings, ready_text: str | None = None) -> Iterator[Process]:
    process = Process(module, settings).start()
    try:
        if ready_text is not None:
            process.wait_for_log(ready_text)
        yield process
    finally:
        process.stop()


@contextmanager
def acls_granted(settings: Settings) -> Iterator[None]:
    """The ACLs of services/kafka_acls.py for the topic and group names of `settings`, granted
    (by deploy/local/stack.py, as the admin principal of `settings`) and revoked afterwards: the
    real principals may then run on these names as they do on the system's own."""

    change_acls("grant", settings)
    try:
        yield
    finally:
        change_acls("revoke", settings)


def change_acls(command: str, settings: Settings) -> None:
    """`grant` or `revoke` the ACL table for the names of `settings`, on its broker."""
    env = {**os.environ, **settings.to_env()}
    subprocess.run([sys.executable, str(STACK), command], cwd=ROOT, env=env, check=True)  # noqa: S603 - our own script


def now() -> datetime:
    return datetime.now(UTC)


C = TypeVar("C", bound=c.Command)

OPERATOR = ActorRef.operator(UUID("5b1d0c9e-6a2f-4e8b-9d3c-7f1e2a3b4c5d"), "Olive Operator")
SECOND_OPERATOR = ActorRef.operator(UUID("5b1d0c9e-6a2f-4e8b-9d3c-7f1e2a3b4c5e"), "Sam Second")


@dataclass
class Orderer:
    """Builds the commands of one customer's order, as the gateway and workers would: outcomes
    come from the worker that moves that leg for the order's side."""

    customer_id: UUID
    order_id: UUID = field(default_factory=uuid.uuid4)
    side: Side = Side.BUY

    @property
    def me(self) -> ActorRef:
        return ActorRef.customer(self.customer_id)

    def mover(self, leg: Leg) -> ActorRef:
        return ActorRef.system(MOVERS[self.side, leg])

    def _new(
        self,
        cls: type[C],
        actor: ActorRef,
        **fields: Any,  # noqa: ANN401 - the command's own fields, checked by its model
    ) -> C:
        return new_command(
            cls, order_id=self.order_id, customer_id=self.customer_id, actor=actor, **fields
        )

    def quote(
        self, side: Side, source_id: UUID, destination_id: UUID, amount: str, **extra: object
    ) -> c.RequestQuote:
        self.side = side
        return self._new(
            c.RequestQuote,
            self.me,
            side=side,
            source_id=source_id,
            destination_id=destination_id,
            source_amount=Decimal(amount),
            **extra,
        )

    def confirm(self, side: Side, **extra: object) -> c.ConfirmQuote:
        return self._new(c.ConfirmQuote, self.me, side=side, **extra)

    def cancel(self, **extra: object) -> c.CancelOrder:
        return self._new(c.CancelOrder, self.me, **extra)

    def requote(self, **extra: object) -> c.Requote:
        return self._new(c.Requote, self.me, **extra)

    def approve(
        self,
        rate: str | None = None,
        *,
        override: bool = False,
        reason: str | None = None,
        operator: ActorRef = OPERATOR,
        **extra: object,
    ) -> c.ApproveOrder:
        return self._new(
            c.ApproveOrder,
            operator,
            rate=None if rate is None else Decimal(rate),
            override=override,
            reason=reason,
            **extra,
        )

    def reject(self, **extra: object) -> c.RejectOrder:
        return self._new(c.RejectOrder, OPERATOR, **extra)

    def debited(self, reference: str = "debit-ref", **extra: object) -> c.RecordSourceDebit:
        return self._new(c.RecordSourceDebit, self.mover(Leg.DEBIT), reference=reference, **extra)

    def debit_failed(
        self, reason: str = "insufficient funds", **extra: object
    ) -> c.RecordSourceDebitFailure:
        return self._new(c.RecordSourceDebitFailure, self.mover(Leg.DEBIT), reason=reason, **extra)

    def refunded(
        self, reference: str = "refund-ref", attempt: int = 1, **extra: object
    ) -> c.RecordRefund:
        return self._new(
            c.RecordRefund, self.mover(Leg.REFUND), attempt=attempt, reference=reference, **extra
        )

    def refund_failed(self, attempt: int = 1, **extra: object) -> c.RecordRefundFailure:
        return self._new(
            c.RecordRefundFailure, self.mover(Leg.REFUND), attempt=attempt, reason="closed", **extra
        )

    def paid_out(
        self, attempt: int = 1, reference: str = "payout-ref", **extra: object
    ) -> c.RecordPayout:
        return self._new(
            c.RecordPayout, self.mover(Leg.PAYOUT), attempt=attempt, reference=reference, **extra
        )

    def payout_failed(self, attempt: int = 1, **extra: object) -> c.RecordPayoutFailure:
        return self._new(
            c.RecordPayoutFailure,
            self.mover(Leg.PAYOUT),
            attempt=attempt,
            reason="chain refused",
            **extra,
        )

    def retry_payout(self, **extra: object) -> c.RetryPayout:
        return self._new(c.RetryPayout, OPERATOR, **extra)

    def retry_refund(self, **extra: object) -> c.RetryRefund:
        return self._new(c.RetryRefund, OPERATOR, **extra)


def stored_order_events(settings: Settings) -> list[tuple[UUID, int, str]]:
    """(order id, version, event class) of every order event in the store, in log order."""
    with psycopg.connect(settings.conninfo()) as conn:
        exists = conn.execute("SELECT to_regclass('orders_events')").fetchone()
        if exists is None or exists[0] is None:
            return []
        rows = conn.execute(
            "SELECT originator_id, originator_version, topic FROM orders_events"
            " WHERE topic LIKE %s ORDER BY notification_id",
            ("%Order.%",),
        ).fetchall()
    return [(row[0], row[1], row[2].rsplit(".", 1)[-1]) for row in rows]


async def read_topic(settings: Settings, topic: str) -> list[Any]:
    """Every record of every partition of `topic`, up to the end offsets as of now."""
    consumer = kafka.consumer(settings, client_id="otc-tests", enable_auto_commit=False)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()  # noqa: SLF001 - fresh partitions
        partitions = [
            TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(*partitions, timeout_ms=1000)
            for part in batch.values():
                records.extend(part)
        return records
    finally:
        await consumer.stop()


async def eventually(check: Any, timeout: float = 60.0, interval: float = 0.2) -> Any:  # noqa: ANN401, ASYNC109
    """Poll `check()` (sync or async) until it returns something truthy; fail after `timeout`."""

    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s (last: {last!r})")


@dataclass(frozen=True)
class Customer:
    id: UUID
    account: UUID
    wallet: UUID
    address: str = ""
    network: str = "ethereum"


def unique_wallet_address() -> str:
    return "0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8]


async def make_customer(settings: Settings, name: str = "Ada") -> Customer:
    """A customer with an active EUR account and a wallet with a USDC address."""
    async with PostgresResourceDirectory(settings) as directory:
        await directory.create_schema()
        customer = await directory.create_customer(name)
        account = await directory.create_account(
            customer.id, name="Main", iban="DE89370400440532013000"
        )
        wallet = await directory.create_wallet(
            customer.id,
            label="Cold",
            network="ethereum",
            usdc_address=unique_wallet_address(),
        )
    return Customer(customer.id, account.account.id, wallet.id)


def secrets_in(paths: Iterable[Path], secrets: Mapping[str, str]) -> list[str]:
    """`<name> in <file>` for each secret (a value of `secrets`, by its name) that a file holds;
    values shorter than 8 characters are not secrets worth the name and are refused."""
    short = [name for name, value in secrets.items() if len(value) < 8]
    if short:
        raise ValueError(f"not secrets: {short}")
    found: list[str] = []
    for path in paths:
        text = path.read_text(errors="replace")
        found.extend(f"{name} in {path.name}" for name, value in secrets.items() if value in text)
    return found
