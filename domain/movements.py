"""Money movements as data: which party moves which leg of an order, which event asks for it,
how much moves in which direction, the reference each attempt carries, and what the ledgers
must hold for an order's history (the reconciliation's expectations).

Pure, like the rest of the domain: the workers and `otc check reconcile` read these tables.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from domain.order import Leg, Order, Side


class Party(StrEnum):
    """The two workers that move money, by the system actor name they send outcomes under."""

    EUR_TREASURY = "eur-treasury"
    USDC_CHAIN = "usdc-chain"


class Direction(StrEnum):
    TO_TREASURY = "to-treasury"
    FROM_TREASURY = "from-treasury"


MOVERS: dict[tuple[Side, Leg], Party] = {
    (Side.BUY, Leg.DEBIT): Party.EUR_TREASURY,
    (Side.BUY, Leg.REFUND): Party.EUR_TREASURY,
    (Side.BUY, Leg.PAYOUT): Party.USDC_CHAIN,
    (Side.SELL, Leg.DEBIT): Party.USDC_CHAIN,
    (Side.SELL, Leg.PAYOUT): Party.EUR_TREASURY,
}
"""Who moves each leg. A sell is never refunded: nothing moved before its approval."""

TRIGGERS: dict[tuple[Side, type[Order.Event]], Leg] = {
    (Side.BUY, Order.Confirmed): Leg.DEBIT,
    (Side.BUY, Order.Rejected): Leg.REFUND,
    (Side.BUY, Order.RefundRetried): Leg.REFUND,
    (Side.BUY, Order.Approved): Leg.PAYOUT,
    (Side.BUY, Order.PayoutRetried): Leg.PAYOUT,
    (Side.SELL, Order.Approved): Leg.DEBIT,
    (Side.SELL, Order.SourceDebited): Leg.PAYOUT,
    (Side.SELL, Order.PayoutRetried): Leg.PAYOUT,
}
"""The event after which an order waits for a leg."""

DIRECTION = {
    Leg.DEBIT: Direction.TO_TREASURY,
    Leg.REFUND: Direction.FROM_TREASURY,
    Leg.PAYOUT: Direction.FROM_TREASURY,
}


class Amounts(Protocol):
    """An order's two amounts, as the aggregate or its public view holds them."""

    @property
    def source_amount(self) -> Decimal: ...

    @property
    def destination_amount(self) -> Decimal: ...


def moves_destination(leg: Leg) -> bool:
    """A payout moves the destination amount (to the customer); a debit and a refund the source."""
    return leg is Leg.PAYOUT


def amount_of(order: Amounts, leg: Leg) -> Decimal:
    """Debits and refunds move the source amount; a payout the (final) destination amount."""
    return order.destination_amount if moves_destination(leg) else order.source_amount


def reference(order_id: UUID, leg: Leg, attempt: int) -> str:
    """The client reference of one attempt of a leg: the ledgers are idempotent on it, so a
    retry of the same attempt can never move money twice, and a new attempt is a new movement."""
    if leg is Leg.DEBIT:
        return f"{order_id}-debit"
    return f"{order_id}-{leg}-{attempt}"


_REFERENCE = re.compile(
    r"^(?P<order>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"-(?P<leg>debit|refund|payout)(?:-(?P<attempt>[1-9][0-9]*))?$"
)


@dataclass(frozen=True)
class ParsedReference:
    order_id: UUID
    leg: Leg
    attempt: int


def parse_reference(text: str) -> ParsedReference | None:
    """The order, leg and attempt a reference names; None for a reference that is not ours.
    Refunds made before refunds had attempts carry `<order>-refund`: that is attempt 1."""
    match = _REFERENCE.match(text)
    if match is None:
        return None
    leg = Leg(match.group("leg"))
    attempt = match.group("attempt")
    if leg is Leg.DEBIT and attempt is not None:
        return None
    if leg is Leg.PAYOUT and attempt is None:
        return None
    return ParsedReference(UUID(match.group("order")), leg, int(attempt or 1))


# --------------------------------------------------------------------------- reconciliation


@dataclass(frozen=True)
class Movement:
    """One movement between a customer's account or wallet (`counterparty`, our resource id)
    and the treasury. `direction` is None for one that touches no treasury (a stray)."""

    party: Party
    amount: Decimal
    direction: Direction | None
    counterparty: UUID | None


@dataclass(frozen=True)
class Expected:
    """What an order's history says of one attempt of a leg. `booked` is True (the ledger must
    hold it), False (it must not) or None (in flight: no outcome recorded yet, so the ledger may
    or may not hold it)."""

    reference: str
    movement: Movement
    booked: bool | None


def counterparty_of(order: Order, leg: Leg) -> UUID:
    """The customer's side of a leg: debits and refunds touch the source, payouts the
    destination."""
    return order.destination_id if leg is Leg.PAYOUT else order.source_id


def expected_movements(order: Order, history: Iterable[Order.Event]) -> list[Expected]:
    """Every attempt of every leg the order's events imply, as the order now stands."""
    outcomes: dict[tuple[Leg, int], bool] = {}
    attempts: set[tuple[Leg, int]] = set()
    for event in history:
        outcome = OUTCOMES.get(type(event))
        if outcome is not None:
            leg, done = outcome
            outcomes[leg, getattr(event, "attempt", 1)] = done
        triggered = TRIGGERS.get((order.side, type(event)))
        if triggered is not None:
            attempts.add((triggered, getattr(event, "attempt", 1)))
    return [
        Expected(
            reference=reference(order.id, leg, attempt),
            movement=Movement(
                party=MOVERS[order.side, leg],
                amount=amount_of(order, leg),
                direction=DIRECTION[leg],
                counterparty=counterparty_of(order, leg),
            ),
            booked=outcomes.get((leg, attempt)),
        )
        for leg, attempt in sorted(attempts)
    ]


OUTCOMES: dict[type[Order.Event], tuple[Leg, bool]] = {
    Order.SourceDebited: (Leg.DEBIT, True),
    Order.SourceDebitFailed: (Leg.DEBIT, False),
    Order.Refunded: (Leg.REFUND, True),
    Order.RefundFailed: (Leg.REFUND, False),
    Order.PaidOut: (Leg.PAYOUT, True),
    Order.PayoutFailed: (Leg.PAYOUT, False),
}
"""The outcome events: which leg each settles, and whether the money moved."""

MOVEMENT_EVENTS: dict[type[Order.Event], Leg] = {
    **{event: leg for event, (leg, _) in OUTCOMES.items()},
    Order.RefundRetried: Leg.REFUND,
    Order.PayoutRetried: Leg.PAYOUT,
}
"""The events that record a leg's money moving, failing to, or being tried again (an order's
money movements as operators see them); `MovementUnresolved` names its leg itself."""


def leg_moved(event: Order.Event) -> Leg | None:
    """The leg an event records a movement of, if it records one."""
    if isinstance(event, Order.MovementUnresolved):
        return Leg(event.leg)
    return MOVEMENT_EVENTS.get(type(event))


@dataclass(frozen=True)
class Mismatch:
    reference: str
    problem: str
    unasked: bool = False
    """A movement held that no history read asked for: in flight when its order's events came
    after the histories were read (see `rechecked`)."""


def reconcile(
    expected: Iterable[Expected], booked: dict[str, Movement], known_orders: set[UUID]
) -> list[Mismatch]:
    """Every difference between what the orders' histories imply and what the ledgers hold
    (`booked`, by reference). Each held movement must be expected, with the same party, amount,
    direction and counterparty; a movement recorded as done must be held, one recorded as
    refused must not be; an order has at most one payout and one refund held."""
    wanted = {e.reference: e for e in expected}
    problems: list[Mismatch] = []
    held: dict[tuple[UUID, Leg], list[str]] = {}
    for ref, movement in sorted(booked.items()):
        parsed = parse_reference(ref)
        if parsed is None or parsed.order_id not in known_orders:
            problems.append(Mismatch(ref, f"held by {movement.party} for no order", unasked=True))
            continue
        held.setdefault((parsed.order_id, parsed.leg), []).append(ref)
        canonical = reference(parsed.order_id, parsed.leg, parsed.attempt)
        expectation = wanted.get(canonical)
        if expectation is None:
            unasked = "held, but the order's history never asked for it"
            problems.append(Mismatch(ref, unasked, unasked=True))
            continue
        problems.extend(differences(ref, movement, expectation))
    legacy = {
        reference(p.order_id, p.leg, p.attempt)
        for p in (parse_reference(ref) for ref in booked)
        if p is not None
    }
    for ref, expectation in sorted(wanted.items()):
        if expectation.booked is True and ref not in legacy:
            problems.append(
                Mismatch(ref, f"recorded as done but not held by {expectation.movement.party}")
            )
    for (order_id, leg), refs in sorted(held.items()):
        if leg is not Leg.DEBIT and len(refs) > 1:
            problems.append(Mismatch(str(order_id), f"{len(refs)} {leg}s held: {sorted(refs)}"))
    return problems


def rechecked(first: list[Mismatch], again: list[Mismatch]) -> list[Mismatch]:
    """The mismatches of a reconciliation whose statements were read after its histories
    (`first`), each movement held unasked for judged again by `again`: the same statements
    against the histories read after them. A movement booked between the two reads (an order
    approved and paid meanwhile) was asked for by events the first read came too early to see;
    it is in flight, not a mismatch. Everything else in `first` stands: a movement recorded
    as done is booked before it is recorded, so statements read later hold it."""
    unasked = {m.reference for m in first if m.unasked}
    return [m for m in first if m.reference not in unasked] + [
        m for m in again if m.reference in unasked
    ]


def differences(ref: str, movement: Movement, expectation: Expected) -> list[Mismatch]:
    if expectation.booked is False:
        return [Mismatch(ref, "held, but the order recorded it as refused")]
    wanted = expectation.movement
    return [
        Mismatch(ref, f"{what}: held {got}, the order implies {implied}")
        for what, got, implied in (
            ("party", movement.party, wanted.party),
            ("amount", movement.amount, wanted.amount),
            ("direction", movement.direction, wanted.direction),
            ("counterparty", movement.counterparty, wanted.counterparty),
        )
        if got != implied
    ]
