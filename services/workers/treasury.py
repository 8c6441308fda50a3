"""The two treasury workers: they move money when an order event asks for it, and report the
outcome as a command to the engine. They never write the event store.

Which event moves what (DESIGN.md section 2):

- eur-treasury, buy, `confirmed`: customer EUR account -> treasury, the source amount;
  outcome RecordSourceDebit or RecordSourceDebitFailure.
- eur-treasury, buy, `rejected`: treasury -> customer EUR account, the source amount (refund);
  outcome RecordRefund.
- eur-treasury, sell, `source_debited` or `payout_retried`: treasury -> customer EUR account,
  the destination amount; outcome RecordPayout or RecordPayoutFailure.
- usdc-chain, sell, `approved`: customer wallet -> treasury wallet, the source amount;
  outcome RecordSourceDebit or RecordSourceDebitFailure.
- usdc-chain, buy, `approved` or `payout_retried`: treasury wallet -> customer wallet, the
  destination amount; outcome RecordPayout or RecordPayoutFailure.

Exactly once, in effect: every movement carries a deterministic reference (order id, leg and
payout attempt), so moving again after a crash returns the movement already made; every outcome
carries a deterministic command id, so the engine takes it once. Before moving, a worker reads the
order's current state and acts only if the order still waits for that movement: an event
redelivered after its outcome was recorded moves nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import NAMESPACE_URL, UUID, uuid5

from domain import commands as c
from domain.commands import ActorRef
from domain.order import ActorKind, Order, Side, Status
from domain.resources import FiatAccount, Wallet
from services.adapters.ports import ChainPort, LedgerPort, Transfer, UpstreamRejectedError
from services.contracts import EventEnvelope
from services.resources.port import ResourceDirectory

log = logging.getLogger(__name__)

OUTCOME_NAMESPACE = uuid5(NAMESPACE_URL, "urn:otc:worker-outcomes")
CONCURRENT_ORDERS = 32

Publish = Callable[[c.Command], Awaitable[None]]
LoadOrder = Callable[[UUID], Awaitable[Order | None]]


@dataclass(frozen=True)
class Leg:
    """One money movement an order waits for."""

    name: str  # debit, refund or payout
    attempt: int
    amount: Decimal

    def reference(self, order_id: UUID) -> str:
        suffix = f"-{self.attempt}" if self.name == "payout" else ""
        return f"{order_id}-{self.name}{suffix}"


class MovementRefusedError(Exception):
    """The worker cannot even try: a resource is missing (a configuration fault)."""


class TreasuryWorker:
    """Shared flow: pick the leg an event asks for, check the order still waits for it, move,
    report. Subclasses say which events concern them and how they move money."""

    name: str = "worker"

    def __init__(
        self, *, resources: ResourceDirectory, load_order: LoadOrder, publish: Publish
    ) -> None:
        self.resources = resources
        self.load_order = load_order
        self.publish = publish
        self.actor = ActorRef(kind=ActorKind.SYSTEM, id=self.name)

    def leg_for(self, envelope: EventEnvelope, order: Order) -> Leg | None:
        raise NotImplementedError

    async def move(self, order: Order, leg: Leg) -> Transfer:
        raise NotImplementedError

    async def handle_batch(self, envelopes: Sequence[EventEnvelope]) -> None:
        """Each order's events in order; different orders concurrently."""
        by_order: dict[UUID, list[EventEnvelope]] = {}
        for envelope in envelopes:
            by_order.setdefault(envelope.order_id, []).append(envelope)
        gate = asyncio.Semaphore(CONCURRENT_ORDERS)

        async def one_order(events: list[EventEnvelope]) -> None:
            async with gate:
                for envelope in events:
                    await self.handle(envelope)

        await asyncio.gather(*(one_order(events) for events in by_order.values()))

    async def handle(self, envelope: EventEnvelope) -> None:
        if not self.concerns(envelope):
            return
        order = await self.load_order(envelope.order_id)
        if order is None:
            log.warning(
                "%s: order %s of event %s not found",
                self.name,
                envelope.order_id,
                envelope.event_id,
            )
            return
        leg = self.leg_for(envelope, order)
        if leg is None:
            return  # the order no longer waits for this movement: it was reported already
        try:
            transfer = await self.move(order, leg)
        except UpstreamRejectedError as refusal:
            log.info("%s: %s of order %s refused: %s", self.name, leg.name, order.id, refusal.code)
            outcome = self.failure(order, leg, f"{refusal.code}: {refusal}")
        except MovementRefusedError:
            # Not this event's fault and not retryable by waiting: skip it loudly. The order
            # stays in its pending status, where operators see it.
            log.exception("%s: cannot move money for order %s", self.name, order.id)
            return
        else:
            outcome = self.success(order, leg, transfer)
        if outcome is not None:
            await self.publish(outcome)

    def concerns(self, envelope: EventEnvelope) -> bool:
        raise NotImplementedError

    def _common(self, order: Order, leg: Leg, outcome: str) -> dict[str, object]:
        return {
            "command_id": uuid5(
                OUTCOME_NAMESPACE, f"{order.id}:{leg.name}:{leg.attempt}:{outcome}"
            ),
            "order_id": order.id,
            "customer_id": order.customer_id,
            "actor": self.actor,
            "issued_at": datetime.now(UTC),
        }

    def success(self, order: Order, leg: Leg, transfer: Transfer) -> c.Command:
        common = self._common(order, leg, "done")
        if leg.name == "debit":
            return c.RecordSourceDebit(**common, reference=transfer.external_id)
        if leg.name == "refund":
            return c.RecordRefund(**common, reference=transfer.external_id)
        return c.RecordPayout(**common, attempt=leg.attempt, reference=transfer.external_id)

    def failure(self, order: Order, leg: Leg, reason: str) -> c.Command | None:
        common = self._common(order, leg, "failed")
        if leg.name == "debit":
            return c.RecordSourceDebitFailure(**common, reason=reason[:500])
        if leg.name == "payout":
            return c.RecordPayoutFailure(**common, attempt=leg.attempt, reason=reason[:500])
        # A refund out of the treasury has no failure outcome: the order stays refund_pending
        # for operators, and the log says why.
        log.error("%s: refund of order %s refused: %s", self.name, order.id, reason)
        return None


def waits_for(order: Order, status: Status) -> bool:
    return order.status is status


class EurTreasuryWorker(TreasuryWorker):
    name = "eur-treasury"

    def __init__(
        self,
        *,
        ledger: LedgerPort,
        resources: ResourceDirectory,
        load_order: LoadOrder,
        publish: Publish,
    ) -> None:
        super().__init__(resources=resources, load_order=load_order, publish=publish)
        self.ledger = ledger

    def concerns(self, envelope: EventEnvelope) -> bool:
        if envelope.side == Side.BUY:
            return envelope.type in {"order.confirmed", "order.rejected"}
        return envelope.type in {"order.source_debited", "order.payout_retried"}

    def leg_for(self, envelope: EventEnvelope, order: Order) -> Leg | None:
        if order.side is Side.BUY and envelope.type == "order.confirmed":
            return (
                Leg("debit", 1, order.source_amount)
                if waits_for(order, Status.DEBIT_PENDING)
                else None
            )
        if order.side is Side.BUY and envelope.type == "order.rejected":
            return (
                Leg("refund", 1, order.source_amount)
                if waits_for(order, Status.REFUND_PENDING)
                else None
            )
        if order.side is Side.SELL and waits_for(order, Status.PAYOUT_PENDING):
            return Leg("payout", order.payout_attempt, order.destination_amount)
        return None

    async def move(self, order: Order, leg: Leg) -> Transfer:
        treasury = await self.resources.treasury_account()
        if treasury is None:
            raise MovementRefusedError("no EUR treasury account is configured")
        customer_account_id = order.source_id if order.side is Side.BUY else order.destination_id
        customer = (await self.resources.accounts([customer_account_id])).get(customer_account_id)
        if customer is None:
            raise MovementRefusedError(
                f"account {customer_account_id} of order {order.id} not found"
            )
        source, target = self._direction(leg, customer, treasury)
        return await self.ledger.transfer(
            reference=leg.reference(order.id),
            from_account=source.id,
            to_account=target.id,
            amount=leg.amount,
        )

    @staticmethod
    def _direction(
        leg: Leg, customer: FiatAccount, treasury: FiatAccount
    ) -> tuple[FiatAccount, FiatAccount]:
        return (customer, treasury) if leg.name == "debit" else (treasury, customer)


class UsdcChainWorker(TreasuryWorker):
    name = "usdc-chain"

    def __init__(
        self,
        *,
        chain: ChainPort,
        resources: ResourceDirectory,
        load_order: LoadOrder,
        publish: Publish,
    ) -> None:
        super().__init__(resources=resources, load_order=load_order, publish=publish)
        self.chain = chain

    def concerns(self, envelope: EventEnvelope) -> bool:
        if envelope.side == Side.SELL:
            return envelope.type == "order.approved"
        return envelope.type in {"order.approved", "order.payout_retried"}

    def leg_for(self, envelope: EventEnvelope, order: Order) -> Leg | None:
        if order.side is Side.SELL:
            debit_due = envelope.type == "order.approved" and waits_for(order, Status.DEBIT_PENDING)
            return Leg("debit", 1, order.source_amount) if debit_due else None
        if waits_for(order, Status.PAYOUT_PENDING):
            return Leg("payout", order.payout_attempt, order.destination_amount)
        return None

    async def move(self, order: Order, leg: Leg) -> Transfer:
        wallet_id = order.source_id if order.side is Side.SELL else order.destination_id
        customer = (await self.resources.wallets([wallet_id])).get(wallet_id)
        if customer is None or customer.usdc_address is None:
            raise MovementRefusedError(
                f"wallet {wallet_id} of order {order.id} has no USDC address"
            )
        treasury = await self.resources.treasury_wallet(customer.network)
        if treasury is None or treasury.usdc_address is None:
            raise MovementRefusedError(f"no treasury wallet on {customer.network}")
        source, target = (customer, treasury) if leg.name == "debit" else (treasury, customer)
        return await self.chain.transfer(
            reference=leg.reference(order.id),
            network=customer.network,
            from_address=address_of(source),
            to_address=address_of(target),
            amount=leg.amount,
        )


def address_of(wallet: Wallet) -> str:
    if wallet.usdc_address is None:
        raise MovementRefusedError(f"wallet {wallet.id} has no USDC address")
    return wallet.usdc_address
