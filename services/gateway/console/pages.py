"""What each console page shows, read from the same places as the operators' API
(services/gateway/queries.py): the order list's rows and their operator facts, an order's
history, and the monitor's last findings. Plain values for the templates; no HTML here."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.money import BPS, collar
from domain.movements import amount_of, leg_moved, moves_destination
from domain.order import Leg, Order, Side, Status
from domain.views import OrderView
from services.gateway.console.ports import ConsolePorts
from services.gateway.console.rates import Pair
from services.gateway.ports import Gateway
from services.gateway.queries import PENDING_QUEUE, history_entry, ops_order
from services.gateway.schemas import HistoryEntry
from services.monitor.results import CONSERVATION, DEAD_LETTERS, RECONCILE, Finding

QUEUE_LIMIT = 100
"""Orders shown in a queue; the API pages through the rest."""


@dataclass(frozen=True)
class Movement:
    entry: HistoryEntry
    leg: Leg
    amount: Decimal
    currency: str


def movement_of(event: Order.Event, entry: HistoryEntry, view: OrderView) -> Movement | None:
    """The money movement an event records (domain/movements.py says which), as the history
    shows the event."""
    leg = leg_moved(event)
    if leg is None:
        return None
    currency = view.destination_currency if moves_destination(leg) else view.source_currency
    return Movement(entry, leg, amount_of(view, leg), currency)


@dataclass(frozen=True)
class OrderLine:
    """One order as a queue or a search shows it."""

    view: OrderView
    customer_id: UUID
    facts: dict[str, Any]
    waiting: str
    live_rate: Decimal | None = None
    difference_bps: Decimal | None = None
    collar: tuple[Decimal, Decimal] | None = None

    @property
    def id(self) -> UUID:
        return self.view.id

    @property
    def dual_control(self) -> str:
        if not self.facts.get("dualControl"):
            return "one operator"
        approvals = self.facts.get("approvals") or []
        if not approvals:
            return "two operators: none approved yet"
        names = ", ".join(a.get("operatorName") or a["operatorId"] for a in approvals)
        return f"two operators: {len(approvals)} of 2 approved ({names})"


@dataclass(frozen=True)
class OrderPage:
    line: OrderLine
    events: list[HistoryEntry]
    movements: list[Movement] = field(default_factory=list)


def age(since: datetime, now: datetime) -> str:
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 60:  # noqa: PLR2004 - a minute
        return f"{seconds} s"
    if seconds < 3600:  # noqa: PLR2004 - an hour
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def line_of(gw: Gateway, row: Any, now: datetime) -> OrderLine:  # noqa: ANN401 - a read-model row
    view: OrderView = row.view
    return OrderLine(
        view=view,
        customer_id=row.customer_id,
        facts=ops_order(row, gw.dual_control_eur),
        waiting=age(view.updated_at, now),
    )


def priced(line: OrderLine, live: Decimal | None, collar_bps: int) -> OrderLine:
    """The line with the live rate beside its indicative one: the difference in bps (positive:
    the customer would get more now) and the price collar an explicit rate must stay within."""
    if live is None:
        return line
    indicative = line.view.indicative_rate or line.view.rate
    return replace(
        line,
        live_rate=live,
        difference_bps=((live - indicative) / indicative * BPS).quantize(Decimal("0.1")),
        collar=collar(live, collar_bps),
    )


def pair_of(view: OrderView) -> Pair:
    return Pair(view.source_currency, view.destination_currency, view.source_amount)


async def with_live_rates(console: ConsolePorts, lines: list[OrderLine]) -> list[OrderLine]:
    if console.live_rates is None:
        return lines
    rates = await console.live_rates.rates([pair_of(line.view) for line in lines])
    return [priced(line, rate, console.collar_bps) for line, rate in zip(lines, rates, strict=True)]


async def pending_queue(gw: Gateway) -> tuple[list[OrderLine], int]:
    """The pending-approval queue, oldest first, each with the live rate now."""
    rows, total = await asyncio.to_thread(
        gw.read_model.list_by_status, PENDING_QUEUE, page=1, limit=QUEUE_LIMIT
    )
    now = datetime.now(UTC)
    lines = [line_of(gw, row, now) for row in rows]
    return await with_live_rates(gw.console, lines), total


async def attention_queue(gw: Gateway) -> tuple[list[OrderLine], int]:
    rows, total = await asyncio.to_thread(
        gw.read_model.list_needing_attention, page=1, limit=QUEUE_LIMIT
    )
    now = datetime.now(UTC)
    return [line_of(gw, row, now) for row in rows], total


async def one_line(gw: Gateway, order_id: UUID, *, live: bool = False) -> OrderLine | None:
    row = await asyncio.to_thread(gw.read_model.get, order_id)
    if row is None:
        return None
    line = line_of(gw, row, datetime.now(UTC))
    if live and line.view.status is Status.PENDING_APPROVAL:
        [line] = await with_live_rates(gw.console, [line])
    return line


async def order_page(gw: Gateway, order_id: UUID) -> OrderPage | None:
    line = await one_line(gw, order_id, live=True)
    if line is None:
        return None
    history = await gw.history(order_id)
    entries = [history_entry(event) for event in history]
    moved = (movement_of(e, entry, line.view) for e, entry in zip(history, entries, strict=True))
    return OrderPage(line=line, events=entries, movements=[m for m in moved if m is not None])


async def search(
    gw: Gateway, *, order_id: UUID | None, customer_id: UUID | None, status: Status | None
) -> list[OrderLine]:
    """By id (one order or none); else one customer's orders, newest first, or an order
    status's, oldest first; a status with a customer narrows the customer's."""
    now = datetime.now(UTC)
    if order_id is not None:
        found = await one_line(gw, order_id)
        return [] if found is None else [found]
    if customer_id is not None:
        rows, _ = await asyncio.to_thread(
            gw.read_model.list_for_customer, customer_id, page=1, limit=QUEUE_LIMIT
        )
        lines = [line_of(gw, row, now) for row in rows]
        return [line for line in lines if status is None or line.view.status is status]
    if status is not None:
        rows, _ = await asyncio.to_thread(
            gw.read_model.list_by_status, (status,), page=1, limit=QUEUE_LIMIT
        )
        return [line_of(gw, row, now) for row in rows]
    return []


@dataclass(frozen=True)
class SystemPage:
    checks: list[tuple[str, Finding | None]]
    dead_letters: list[Finding]


async def system_page(gw: Gateway) -> SystemPage:
    findings = await gw.console.findings()
    return SystemPage(
        checks=[(name, findings.get(name)) for name in (RECONCILE, CONSERVATION)],
        dead_letters=sorted(
            (f for name, f in findings.items() if name.startswith(DEAD_LETTERS)),
            key=lambda f: f.name,
        ),
    )


def retry_action(line: OrderLine) -> str | None:
    """The retry an order needing attention offers, if any: a refused payout or refund."""
    if line.view.status is Status.PAYOUT_FAILED:
        return "retry-payout"
    if line.view.status is Status.REFUND_FAILED:
        return "retry-refund"
    return None


SIDE_WORDS = {Side.BUY: "buy USDC", Side.SELL: "sell USDC"}
