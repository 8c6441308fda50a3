"""What the gateway reads, and how it shows it: the `order_list` read model (customers' orders,
the operators' queues), the resource directory (accounts, wallets), live wallet balances and an
order's event history. Another customer's order or wallet is not found, like a missing one."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.errors import ErrorCode
from domain.order import Order, Side, Status
from domain.resources import is_eligible_account, is_eligible_wallet
from domain.views import OpsFacts, OrderView
from services.adapters.ports import UpstreamError
from services.auth.principal import Principal
from services.contracts import event_data
from services.gateway.params import page_of
from services.gateway.ports import Gateway, OrderRow
from services.gateway.problems import ApiError
from services.gateway.schemas import (
    Account,
    AccountList,
    History,
    HistoryEntry,
    Wallet,
    WalletBalance,
    WalletList,
)

PENDING_QUEUE = (Status.PENDING_APPROVAL,)


async def owned_row(gw: Gateway, order_id: UUID, principal: Principal) -> OrderRow:
    row = await asyncio.to_thread(gw.read_model.get, order_id)
    if row is None or row.customer_id != principal.customer_id:
        raise ApiError(ErrorCode.ORDER_NOT_FOUND, "order not found")
    return row


async def owner_of(gw: Gateway, order_id: UUID) -> UUID | None:
    """Whose order this is, for a command on it: from the order list, or, while the list is
    behind the event store (a projector catching up after an outage), from the order's history,
    the same truth the engine decides on. A command is never refused 404 for an order that
    exists only because the list has not shown it yet."""
    row = await asyncio.to_thread(gw.read_model.get, order_id)
    if row is not None:
        return row.customer_id
    events = await gw.history(order_id)
    owner = getattr(events[0], "customer_id", None) if events else None
    return owner if isinstance(owner, UUID) else None


async def eligible_accounts(gw: Gateway, principal: Principal) -> AccountList:
    accounts = await gw.resources.accounts_of(principal.customer_id)
    return AccountList(
        data=[
            Account(
                id=a.id,
                name=a.name,
                currency=a.currency,
                status=a.status.value,
                iban_last4=a.iban_last4,
            )
            for a in accounts
            if is_eligible_account(a)
        ],
    )


async def eligible_wallets(gw: Gateway, principal: Principal) -> WalletList:
    wallets = await gw.resources.wallets_of(principal.customer_id)
    return WalletList(
        data=[
            Wallet(id=w.id, label=w.label, network=w.network, usdc_address=w.usdc_address or "")
            for w in wallets
            if is_eligible_wallet(w)
        ],
    )


async def live_balance(gw: Gateway, principal: Principal, wallet_id: UUID) -> WalletBalance:
    wallet = (await gw.resources.wallets([wallet_id])).get(wallet_id)
    if (
        wallet is None
        or wallet.customer_id != principal.customer_id
        or not is_eligible_wallet(wallet)
    ):
        raise ApiError(ErrorCode.WALLET_NOT_FOUND, "wallet not found")
    assert wallet.usdc_address is not None  # noqa: S101 - eligible wallets have one
    try:
        balance = await gw.balances.usdc_balance(
            network=wallet.network, address=wallet.usdc_address
        )
    except UpstreamError:
        raise ApiError(
            ErrorCode.BALANCE_UNAVAILABLE, "the live balance could not be fetched"
        ) from None
    return WalletBalance(
        wallet_id=wallet.id,
        network=wallet.network,
        usdc_balance=str(balance.quantize(Decimal("0.000001"))),
    )


async def orders_of(gw: Gateway, principal: Principal, page: int, limit: int) -> dict[str, Any]:
    rows, total = await asyncio.to_thread(
        gw.read_model.list_for_customer,
        principal.customer_id,
        page=page,
        limit=limit,
    )
    return page_of([row.view.public_json() for row in rows], page, limit, total)


async def pending_approval(gw: Gateway, page: int, limit: int) -> dict[str, Any]:
    rows, total = await asyncio.to_thread(
        gw.read_model.list_by_status, PENDING_QUEUE, page=page, limit=limit
    )
    return ops_page(gw, rows, page, limit, total)


async def needing_attention(gw: Gateway, page: int, limit: int) -> dict[str, Any]:
    rows, total = await asyncio.to_thread(
        gw.read_model.list_needing_attention, page=page, limit=limit
    )
    return ops_page(gw, rows, page, limit, total)


def ops_page(gw: Gateway, rows: list[Any], page: int, limit: int, total: int) -> dict[str, Any]:
    return page_of([ops_order(row, gw.dual_control_eur) for row in rows], page, limit, total)


def ops_order(row: Any, dual_control_eur: Decimal) -> dict[str, Any]:  # noqa: ANN401 - a read-model row
    """One order for operators: its public view and what the desk needs to decide on it."""
    view: OrderView = row.view
    ops: OpsFacts = row.ops
    eur_value = view.source_amount if view.side is Side.BUY else view.destination_amount
    pending = view.status is Status.PENDING_APPROVAL
    facts = {
        "approvals": [a.model_dump(mode="json", by_alias=True) for a in ops.approvals],
        "dualControl": eur_value >= dual_control_eur,
        "awaitingSecondApproval": pending and len(ops.approvals) == 1,
        "unresolved": None
        if ops.unresolved is None
        else ops.unresolved.model_dump(mode="json", by_alias=True),
        "failureDetail": ops.failure_reason,
    }
    return {**view.public_json(), **{k: v for k, v in facts.items() if v is not None}}


async def history_of(gw: Gateway, order_id: UUID) -> History:
    events = await gw.history(order_id)
    if not events:
        raise ApiError(ErrorCode.ORDER_NOT_FOUND, "order not found")
    return History(order_id=order_id, events=[history_entry(event) for event in events])


def history_entry(event: Order.Event) -> HistoryEntry:
    """One event for the operators' API: who, when, what; never the server-side references
    (provider quote ids, bank references, transaction hashes: `otc audit history` shows them)."""
    data = event_data(event, server_side=False)
    for name in ("actorKind", "actorId", "actorName", "commandId"):
        data.pop(name, None)
    return HistoryEntry(
        version=event.originator_version,
        type=type(event).__name__,
        occurred_at=event.timestamp.isoformat(),
        actor={"kind": event.actor_kind, "id": event.actor_id, "name": event.actor_name},
        command_id=str(event.command_id),
        data=data,
    )
