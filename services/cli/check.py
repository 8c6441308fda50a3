"""Operator checks of the money, as JSON; exit code 0 when they hold, 1 when not, 2 when the
ledgers or the store cannot be read.

- `otc check conservation`: the sum of EUR over all core-banking accounts and of USDC over all
  chain wallets changes only by explicit funding (orders only move money around). It cannot see
  a movement made twice: the totals stay equal.
- `otc check reconcile`: every order's history against the bank's and the chain's statements.
  The movements booked under an order's references must be exactly what its events imply (one
  debit, at most one payout across attempts, one refund of a rejected buy, nothing for a sell
  that failed at its debit), each with the right amount, direction and counterparty, and every
  booked movement must belong to an order. A movement whose outcome the order does not record
  yet is reported in flight, not as a mismatch.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
import typer

from domain.movements import (
    Direction,
    Expected,
    Movement,
    Party,
    expected_movements,
    rechecked,
    reconcile,
)
from domain.order import Order, Side
from services.adapters.ports import ChainPort, LedgerPort, Transfer, UpstreamError
from services.engine.event_store import Orders, open_orders
from services.resources.store import PostgresResourceDirectory
from services.settings import Settings
from services.upstreams import open_money_movers

check_app = typer.Typer(no_args_is_help=True, help="Operator checks.")


async def conservation(settings: Settings) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        bank = (await client.get(f"{settings.bank_url}/admin/totals")).raise_for_status().json()
        chain = (await client.get(f"{settings.chain_url}/admin/totals")).raise_for_status().json()
    report: dict[str, Any] = {}
    for name, totals in (("EUR", bank), ("USDC", chain)):
        balance, funded = Decimal(totals["balance"]), Decimal(totals["funded"])
        report[name] = {
            "balance": str(balance),
            "funded": str(funded),
            "difference": str(balance - funded),
            "conserved": balance == funded,
        }
    report["conserved"] = all(report[name]["conserved"] for name in ("EUR", "USDC"))
    return report


class KeptHistories:
    """Every order's history, folded, and the movements it implies, from the event store's
    notification log: all of it the first time, then only the notifications after the last one
    read, and only the orders they name are folded again. `otc check reconcile` reads all of it
    each time; the monitor keeps one between its checks (services/monitor/watch.py)."""

    def __init__(self) -> None:
        self.position = 0
        self.histories: dict[UUID, list[Order.Event]] = {}
        self.folded: dict[UUID, Order] = {}
        self.expected: dict[UUID, list[Expected]] = {}

    def refresh(self, orders: Orders) -> set[UUID]:
        """Read what came since the last refresh; the orders it changed."""
        events, self.position = orders.order_events_after(self.position)
        for event in events:
            self.histories.setdefault(event.originator_id, []).append(event)
        changed = {event.originator_id for event in events}
        for order_id in changed:
            history = self.histories[order_id]
            self.folded[order_id] = fold(history)
            self.expected[order_id] = expected_movements(self.folded[order_id], history)
        return changed

    def all_expected(self) -> list[Expected]:
        return [expectation for found in self.expected.values() for expectation in found]


async def reconcile_report(settings: Settings, kept: KeptHistories | None = None) -> dict[str, Any]:
    """The reconciliation: expectations from the event store (`kept` from an earlier report, or
    read whole), movements from the statements."""
    kept = KeptHistories() if kept is None else kept
    orders = open_orders(settings)
    try:
        await asyncio.to_thread(kept.refresh, orders)
    finally:
        orders.close()
    async with (
        PostgresResourceDirectory(settings) as resources,
        open_money_movers(settings) as (ledger, chain),
    ):
        booked = await statements(resources, ledger, chain, kept.folded.values())
    mismatches = reconcile(kept.all_expected(), booked, set(kept.folded))
    if any(m.unasked for m in mismatches):
        # Statements read after the histories may hold a movement of events stored between
        # the two reads: read what came since and judge those again (domain/movements.py).
        orders = open_orders(settings)
        try:
            await asyncio.to_thread(kept.refresh, orders)
        finally:
            orders.close()
        again = reconcile(kept.all_expected(), booked, set(kept.folded))
        mismatches = rechecked(mismatches, again)
    folded, expected = kept.folded, kept.all_expected()
    return {
        "orders": len(folded),
        "movementsExpected": sum(1 for e in expected if e.booked is True),
        "movementsBooked": len(booked),
        "inFlight": sum(1 for e in expected if e.booked is None),
        "mismatches": [{"reference": m.reference, "problem": m.problem} for m in mismatches],
        "reconciled": not mismatches,
    }


def fold(events: list[Order.Event]) -> Order:
    order: Order | None = None
    for event in events:
        order = event.mutate(order)
    assert order is not None  # noqa: S101 - a history has its Quoted event
    return order


async def statements(
    resources: PostgresResourceDirectory,
    ledger: LedgerPort,
    chain: ChainPort,
    orders: Iterable[Order],
) -> dict[str, Movement]:
    """Every booked movement by reference, seen from the treasury: which way it went and which
    customer account or wallet was on the other side (None when neither side is the treasury)."""
    known = list(orders)
    treasury_account = await resources.treasury_account()
    treasury_id = None if treasury_account is None else str(treasury_account.id)
    wallet_ids = {o.destination_id if o.side is Side.BUY else o.source_id for o in known}
    account_ids = {o.source_id if o.side is Side.BUY else o.destination_id for o in known}
    wallets = await resources.wallets(wallet_ids)
    accounts = {str(i) for i in (await resources.accounts(account_ids))}
    by_address = {
        (w.network, w.usdc_address.lower()): w.id for w in wallets.values() if w.usdc_address
    }
    treasuries: dict[str, str] = {}
    for network in {w.network for w in wallets.values()}:
        found = await resources.treasury_wallet(network)
        if found is not None and found.usdc_address is not None:
            treasuries[network] = found.usdc_address.lower()
    booked: dict[str, Movement] = {}
    async for transfer in ledger.statement():
        booked[transfer.reference] = seen_from_treasury(
            Party.EUR_TREASURY,
            transfer,
            treasury_id,
            lambda side: UUID(side) if side in accounts else None,
        )
    async for transfer in chain.statement():
        network = transfer.network or ""

        def wallet_at(address: str, network: str = network) -> UUID | None:
            return by_address.get((network, address.lower()))

        booked[transfer.reference] = seen_from_treasury(
            Party.USDC_CHAIN, transfer, treasuries.get(network), wallet_at, fold_case=True
        )
    return booked


def seen_from_treasury(
    party: Party,
    transfer: Transfer,
    treasury: str | None,
    counterparty: Callable[[str], UUID | None],
    *,
    fold_case: bool = False,
) -> Movement:
    source, target = transfer.source, transfer.target
    if fold_case:
        source, target = source.lower(), target.lower()
    if treasury is not None and target == treasury and source != treasury:
        return Movement(party, transfer.amount, Direction.TO_TREASURY, counterparty(source))
    if treasury is not None and source == treasury and target != treasury:
        return Movement(party, transfer.amount, Direction.FROM_TREASURY, counterparty(target))
    return Movement(party, transfer.amount, None, None)


@check_app.command("reconcile")
def reconcile_command() -> None:
    """Every order's history against the bank's and the chain's statements; mismatches listed."""
    try:
        report = asyncio.run(reconcile_report(Settings()))
    except (UpstreamError, OSError) as error:
        typer.echo(f"could not read the ledgers: {type(error).__name__}: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(report, indent=2))
    raise typer.Exit(0 if report["reconciled"] else 1)


@check_app.command("conservation")
def conservation_command() -> None:
    """Sum of EUR over all accounts and of USDC over all wallets equals what was funded."""
    try:
        report = asyncio.run(conservation(Settings()))
    except httpx.HTTPError as error:
        typer.echo(f"could not read the ledgers: {type(error).__name__}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(report, indent=2))
    raise typer.Exit(0 if report["conserved"] else 1)
