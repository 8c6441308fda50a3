"""The `Order` aggregate: one OTC exchange from quote to settlement (DESIGN.md section 4).

Decisions are pure: the current time, new ids and prices are passed in. Every decision checks
everything first and only then triggers its events, so a refused command leaves the order as it
was. Every event carries the actor and the command id that caused it, and the order's customer
and side, so that each event can be published on its own.

Redelivery: the order remembers, per command id, the version it reached when that command took
effect; the engine answers a repeated command from that version and appends nothing. Worker
outcomes are also idempotent by meaning: an outcome already recorded is accepted again as a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import DomainError, ErrorCode
from domain.hash_chain import CHAIN_CLASS_VERSION, EVENT_HASH, PREVIOUS_HASH, event_digest
from domain.money import (
    Currency,
    check_size,
    collar,
    convert,
    normalise_rate,
    parse_amount,
    round_down,
    slippage_bps,
)


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def source_currency(self) -> Currency:
        return Currency.EUR if self is Side.BUY else Currency.USDC

    @property
    def destination_currency(self) -> Currency:
        return Currency.USDC if self is Side.BUY else Currency.EUR


class Status(StrEnum):
    QUOTED = "quoted"
    REQUOTED = "requoted"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    DEBIT_PENDING = "debit_pending"
    PENDING_APPROVAL = "pending_approval"
    PAYOUT_PENDING = "payout_pending"
    COMPLETED = "completed"
    REFUND_PENDING = "refund_pending"
    REJECTED = "rejected"
    FAILED = "failed"
    PAYOUT_FAILED = "payout_failed"
    REFUND_FAILED = "refund_failed"


OPEN_QUOTE = frozenset({Status.QUOTED, Status.REQUOTED})
REQUOTABLE = frozenset({Status.QUOTED, Status.REQUOTED, Status.EXPIRED})
# No command moves an order out of these. payout_failed and refund_failed are not final: an
# operator retries them.
FINAL = frozenset({Status.CANCELLED, Status.COMPLETED, Status.REJECTED, Status.FAILED})


class Leg(StrEnum):
    """A money movement of an order. Debits happen once; refunds and payouts are attempts that
    an operator may retry after a refusal."""

    DEBIT = "debit"
    REFUND = "refund"
    PAYOUT = "payout"


# The status in which an order waits for each leg's outcome.
AWAITING = {
    Leg.DEBIT: Status.DEBIT_PENDING,
    Leg.REFUND: Status.REFUND_PENDING,
    Leg.PAYOUT: Status.PAYOUT_PENDING,
}


class ActorKind(StrEnum):
    CUSTOMER = "customer"
    OPERATOR = "operator"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who issued a command. Operators are named people: `id` is the operator's id and `name`
    the person's name; customers and system processes have no name."""

    kind: ActorKind
    id: str
    name: str | None = None


@dataclass(frozen=True)
class Cause:
    """Who asked, and by which command: stamped on every event a decision makes."""

    actor: Actor
    command_id: UUID
    now: datetime

    def stamp(self) -> dict[str, Any]:
        return {
            "actor_kind": self.actor.kind.value,
            "actor_id": self.actor.id,
            "actor_name": self.actor.name,
            "command_id": self.command_id,
            "timestamp": self.now,
        }


@dataclass(frozen=True)
class SizeLimits:
    """The smallest and largest source amount accepted, per source currency."""

    minimum: dict[Currency, Decimal]
    maximum: dict[Currency, Decimal]


@dataclass(frozen=True)
class ApprovalControls:
    """The desk's limits on an approval: how far an operator's rate may stray from the live
    rate, and the EUR value from which two different operators must approve."""

    collar_bps: int
    dual_control_eur: Decimal


@dataclass(frozen=True)
class ApprovalRequest:
    """An operator's approval: an explicit rate (None: the live one), the live provider rate
    fetched for this approval, and an override of the collar with its reason."""

    rate: Decimal | None
    live_rate: Decimal
    provider_quote_id: str | None
    override: bool = False
    reason: str | None = None


@dataclass(frozen=True)
class QuoteTerms:
    """A priced quote: the decision's inputs from the pricing port."""

    rate: Decimal
    fee: Decimal
    expires_at: datetime
    provider_quote_id: str | None


class Order(Aggregate):
    # ------------------------------------------------------------------ events

    class Event(Aggregate.Event):
        """Base of every order event: who caused it and which command.

        Version 2 added `actor_name` (the operator's name); events stored before it read as
        having none.

        Version 3 added the hash chain (domain/hash_chain.py): `previous_hash`, the hash of the
        order's event before this one (None for its first event, and for its first event after
        a history stored before version 3), and `event_hash`, this event's own hash, taken when
        the event is made. Events stored before version 3 read as unchained: both None.
        """

        customer_id: UUID
        side: str
        actor_kind: str
        actor_id: str
        actor_name: str | None
        command_id: UUID
        previous_hash: str | None
        event_hash: str | None = field(init=False)

        class_version = CHAIN_CLASS_VERSION

        def __post_init__(self) -> None:
            """Runs when a decision makes the event, not when the store reads one back."""
            super().__post_init__()
            object.__setattr__(self, EVENT_HASH, event_digest(self))

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["actor_name"] = None

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state[PREVIOUS_HASH] = None
            state[EVENT_HASH] = None

        def apply(self, aggregate: Any) -> None:  # noqa: ANN401 - eventsourcing's signature
            order: Order = aggregate
            order.evolve(self)

    class Quoted(Event, Aggregate.Created):
        source_id: UUID
        source_amount: Decimal
        destination_id: UUID
        rate: Decimal
        fee: Decimal
        destination_amount: Decimal
        expires_at: datetime
        provider_quote_id: str | None

    class Requoted(Event):
        rate: Decimal
        fee: Decimal
        destination_amount: Decimal
        expires_at: datetime
        provider_quote_id: str | None

    class Expired(Event):
        observed: bool
        """True when a later command noticed the lapse; False for the sweeper's ExpireQuote."""

    class Cancelled(Event):
        pass

    class Confirmed(Event):
        max_slippage_bps: int | None

    class SourceDebited(Event):
        reference: str

    class SourceDebitFailed(Event):
        reason: str

    class ApprovalRecorded(Event):
        """The first of two approvals under dual control: the order waits for a second
        operator."""

        rate: Decimal
        live_rate: Decimal
        override: bool
        override_reason: str | None

    class Approved(Event):
        """The final rate. `live_rate` is the provider's rate at approval; `override` says the
        operator's rate was outside the collar, with the reason. Events stored before version 2
        have neither."""

        rate: Decimal
        destination_amount: Decimal
        provider_quote_id: str | None
        live_rate: Decimal | None
        override: bool
        override_reason: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["actor_name"] = None
            state["live_rate"] = None
            state["override"] = False
            state["override_reason"] = None

    class Rejected(Event):
        reason: str

    class Refunded(Event):
        attempt: int
        reference: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["actor_name"] = None
            state["attempt"] = 1

    class RefundFailed(Event):
        attempt: int
        reason: str

    class RefundRetried(Event):
        attempt: int

    class MovementUnresolved(Event):
        """A worker could not learn a movement's outcome within its bound. The status does not
        change: the outcome is unknown, not failed. Operators are alerted."""

        leg: str
        attempt: int
        reason: str

    class PaidOut(Event):
        attempt: int
        reference: str

    class PayoutFailed(Event):
        attempt: int
        reason: str

    class PayoutRetried(Event):
        attempt: int

    # ------------------------------------------------------------------ state

    customer_id: UUID
    side: Side
    status: Status
    source_id: UUID
    source_amount: Decimal
    destination_id: UUID
    rate: Decimal
    fee: Decimal
    destination_amount: Decimal
    indicative_rate: Decimal | None
    indicative_destination_amount: Decimal | None
    expires_at: datetime
    max_slippage_bps: int | None
    provider_quote_id: str | None
    debit_reference: str | None
    refund_reference: str | None
    payout_reference: str | None
    payout_attempt: int
    refund_attempt: int
    failure_reason: str | None
    first_approval: Actor | None
    unresolved: tuple[Leg, int] | None
    processed: dict[str, int]
    last_event_hash: str | None
    """The hash of the latest event (None if it is unchained): the next event's previous_hash."""

    def __init__(self) -> None:
        """State is set by the Quoted event (see `evolve`), not by the constructor."""

    @property
    def source_currency(self) -> Currency:
        return self.side.source_currency

    @property
    def destination_currency(self) -> Currency:
        return self.side.destination_currency

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    def attempt_of(self, leg: Leg) -> int:
        """The current attempt of a leg: debits have one, refunds and payouts are retried."""
        return {Leg.DEBIT: 1, Leg.REFUND: self.refund_attempt, Leg.PAYOUT: self.payout_attempt}[leg]

    def waits_for(self, leg: Leg) -> bool:
        return self.status is AWAITING[leg]

    def eur_value(self) -> Decimal:
        """What the order is worth in EUR for the desk's limits: a buy's source amount, a sell's
        (indicative, before approval) destination amount."""
        return self.source_amount if self.side is Side.BUY else self.destination_amount

    def version_after(self, command_id: UUID) -> int | None:
        """The version this command reached when it took effect, or None if it never did."""
        return self.processed.get(str(command_id))

    # ------------------------------------------------------------------ decisions

    @classmethod
    def request_quote(  # noqa: PLR0913 - a quote has this many facts
        cls,
        *,
        order_id: UUID,
        customer_id: UUID,
        side: Side,
        source_id: UUID,
        destination_id: UUID,
        source_amount: Decimal,
        limits: SizeLimits,
        terms: QuoteTerms,
        cause: Cause,
    ) -> Order:
        source_amount = checked_source_amount(side, source_amount, limits)
        rate, fee, destination_amount = price_out(side, source_amount, terms)
        return cls._create(
            cls.Quoted,
            id=order_id,
            customer_id=customer_id,
            side=side.value,
            source_id=source_id,
            source_amount=source_amount,
            destination_id=destination_id,
            rate=rate,
            fee=fee,
            destination_amount=destination_amount,
            expires_at=terms.expires_at,
            provider_quote_id=terms.provider_quote_id,
            previous_hash=None,
            **cause.stamp(),
        )

    def observe_time(self, cause: Cause) -> None:
        """Record that an open quote has lapsed, when a command finds it so."""
        if self.status in OPEN_QUOTE and cause.now >= self.expires_at:
            self._trigger(self.Expired, cause, observed=True)

    def requote(self, terms: QuoteTerms, cause: Cause) -> None:
        self.check_status(REQUOTABLE, ErrorCode.INVALID_TRANSITION, "requote")
        rate, fee, destination_amount = price_out(self.side, self.source_amount, terms)
        self._trigger(
            self.Requoted,
            cause,
            rate=rate,
            fee=fee,
            destination_amount=destination_amount,
            expires_at=terms.expires_at,
            provider_quote_id=terms.provider_quote_id,
        )

    def expire(self, cause: Cause) -> None:
        """The sweeper's ExpireQuote: only a lapsed open quote expires."""
        if self.status is Status.EXPIRED:
            return
        self.check_status(OPEN_QUOTE, ErrorCode.INVALID_TRANSITION, "expire")
        if cause.now < self.expires_at:
            raise DomainError(ErrorCode.INVALID_TRANSITION, "the quote has not lapsed yet")
        self._trigger(self.Expired, cause, observed=False)

    def cancel(self, cause: Cause) -> None:
        if self.status not in OPEN_QUOTE:
            raise DomainError(
                ErrorCode.NOT_CANCELLABLE,
                f"an order in status {self.status} cannot be cancelled",
            )
        self._trigger(self.Cancelled, cause)

    def confirm(self, side: Side, max_slippage_bps: int | None, cause: Cause) -> None:
        if side is not self.side:
            raise DomainError(
                ErrorCode.SIDE_MISMATCH,
                f"the quote is a {self.side}, not a {side}",
                field="side",
            )
        if self.status is Status.EXPIRED or (
            self.status in OPEN_QUOTE and cause.now >= self.expires_at
        ):
            raise DomainError(ErrorCode.QUOTE_EXPIRED, "the quote has expired; request a requote")
        self.check_status(OPEN_QUOTE, ErrorCode.INVALID_TRANSITION, "confirm")
        if max_slippage_bps is not None and max_slippage_bps < 0:
            raise DomainError(
                ErrorCode.VALIDATION_ERROR,
                "maxSlippageBps must not be negative",
                field="maxSlippageBps",
            )
        self._trigger(self.Confirmed, cause, max_slippage_bps=max_slippage_bps)

    def approve(self, request: ApprovalRequest, controls: ApprovalControls, cause: Cause) -> None:
        """Approve at the operator's rate (within the collar of the live rate, unless overridden
        with a reason) or at the live rate. Under dual control the first approval is recorded
        and a second, different operator executes it."""
        self.check_status({Status.PENDING_APPROVAL}, ErrorCode.INVALID_TRANSITION, "approve")
        live_rate = checked_live_rate(request.live_rate)
        rate = live_rate if request.rate is None else normalise_rate(request.rate)
        self.check_override(request)
        if not request.override:
            check_within_collar(rate, live_rate, controls.collar_bps)
        if (
            self.max_slippage_bps is not None
            and slippage_bps(self.rate, rate) > self.max_slippage_bps
        ):
            raise DomainError(
                ErrorCode.SLIPPAGE_EXCEEDED,
                f"the final rate {rate} is more than {self.max_slippage_bps} bps worse than "
                f"the indicative rate {self.rate}",
            )
        destination_amount = convert(self.source_amount, self.fee, rate, self.destination_currency)
        if destination_amount <= 0:
            raise DomainError(ErrorCode.VALIDATION_ERROR, "the final rate leaves nothing to pay")
        override_reason = request.reason if request.override else None
        if self.eur_value() >= controls.dual_control_eur and not self.second_approval(cause):
            self._trigger(
                self.ApprovalRecorded,
                cause,
                rate=rate,
                live_rate=live_rate,
                override=request.override,
                override_reason=override_reason,
            )
            return
        self._trigger(
            self.Approved,
            cause,
            rate=rate,
            destination_amount=destination_amount,
            provider_quote_id=request.provider_quote_id if request.rate is None else None,
            live_rate=live_rate,
            override=request.override,
            override_reason=override_reason,
        )

    def second_approval(self, cause: Cause) -> bool:
        """Whether this approval is the second of two; the same operator twice is refused."""
        if self.first_approval is None:
            return False
        if self.first_approval.id == cause.actor.id:
            raise DomainError(
                ErrorCode.SAME_APPROVER,
                "this order needs a second approval by a different operator",
            )
        return True

    @staticmethod
    def check_override(request: ApprovalRequest) -> None:
        if not request.override:
            return
        if request.rate is None:
            raise DomainError(
                ErrorCode.VALIDATION_ERROR, "an override needs an explicit rate", field="rate"
            )
        if request.reason is None or not request.reason.strip():
            raise DomainError(
                ErrorCode.VALIDATION_ERROR, "an override needs a reason", field="reason"
            )

    def reject(self, reason: str, cause: Cause) -> None:
        self.check_status({Status.PENDING_APPROVAL}, ErrorCode.INVALID_TRANSITION, "reject")
        self._trigger(self.Rejected, cause, reason=reason)

    def record_source_debit(self, reference: str, cause: Cause) -> None:
        if self.debit_reference is not None:
            self.check_same_outcome(self.debit_reference, reference, "source debit")
            return
        self.check_status({Status.DEBIT_PENDING}, ErrorCode.INVALID_TRANSITION, "record a debit")
        self._trigger(self.SourceDebited, cause, reference=reference)

    def record_source_debit_failure(self, reason: str, cause: Cause) -> None:
        if self.status is Status.FAILED:
            return
        self.check_status(
            {Status.DEBIT_PENDING},
            ErrorCode.INVALID_TRANSITION,
            "record a debit failure",
        )
        self._trigger(self.SourceDebitFailed, cause, reason=reason)

    def record_refund(self, attempt: int, reference: str, cause: Cause) -> None:
        if self.refund_reference is not None:
            self.check_same_outcome(self.refund_reference, reference, "refund")
            return
        self.check_attempt(Leg.REFUND, attempt)
        self.check_status({Status.REFUND_PENDING}, ErrorCode.INVALID_TRANSITION, "record a refund")
        self._trigger(self.Refunded, cause, attempt=attempt, reference=reference)

    def record_refund_failure(self, attempt: int, reason: str, cause: Cause) -> None:
        if self.failure_already_recorded(Leg.REFUND, attempt, Status.REFUND_FAILED):
            return
        self.check_attempt(Leg.REFUND, attempt)
        self.check_status(
            {Status.REFUND_PENDING}, ErrorCode.INVALID_TRANSITION, "record a refund failure"
        )
        self._trigger(self.RefundFailed, cause, attempt=attempt, reason=reason)

    def retry_refund(self, cause: Cause) -> None:
        self.check_status({Status.REFUND_FAILED}, ErrorCode.INVALID_TRANSITION, "retry the refund")
        self._trigger(self.RefundRetried, cause, attempt=self.refund_attempt + 1)

    def record_payout(self, attempt: int, reference: str, cause: Cause) -> None:
        if self.payout_reference is not None:
            self.check_same_outcome(self.payout_reference, reference, "payout")
            return
        self.check_attempt(Leg.PAYOUT, attempt)
        self.check_status({Status.PAYOUT_PENDING}, ErrorCode.INVALID_TRANSITION, "record a payout")
        self._trigger(self.PaidOut, cause, attempt=attempt, reference=reference)

    def record_payout_failure(self, attempt: int, reason: str, cause: Cause) -> None:
        if self.failure_already_recorded(Leg.PAYOUT, attempt, Status.PAYOUT_FAILED):
            return
        self.check_attempt(Leg.PAYOUT, attempt)
        self.check_status(
            {Status.PAYOUT_PENDING},
            ErrorCode.INVALID_TRANSITION,
            "record a payout failure",
        )
        self._trigger(self.PayoutFailed, cause, attempt=attempt, reason=reason)

    def retry_payout(self, cause: Cause) -> None:
        self.check_status({Status.PAYOUT_FAILED}, ErrorCode.INVALID_TRANSITION, "retry the payout")
        self._trigger(self.PayoutRetried, cause, attempt=self.payout_attempt + 1)

    def record_movement_unresolved(self, leg: Leg, attempt: int, reason: str, cause: Cause) -> None:
        """Flag a movement whose outcome a worker could not learn; flagging it again is a no-op.
        Nothing else changes: the movement is neither done nor failed."""
        if self.unresolved == (leg, attempt):
            return
        self.check_attempt(leg, attempt)
        self.check_status({AWAITING[leg]}, ErrorCode.INVALID_TRANSITION, f"flag a {leg}")
        self._trigger(self.MovementUnresolved, cause, leg=leg.value, attempt=attempt, reason=reason)

    def failure_already_recorded(self, leg: Leg, attempt: int, failed: Status) -> bool:
        """An earlier attempt, or this one once it failed: a retry starts only after a failure
        was recorded, so a late repeat of that failure is a no-op."""
        current = self.attempt_of(leg)
        return attempt < current or (self.status is failed and attempt == current)

    # ------------------------------------------------------------------ checks

    def check_owner(self, actor: Actor) -> None:
        """Customers see only their own orders: another's is indistinguishable from none."""
        if actor.kind is ActorKind.CUSTOMER and actor.id != str(self.customer_id):
            raise DomainError(ErrorCode.ORDER_NOT_FOUND, "order not found")

    def check_status(
        self, allowed: frozenset[Status] | set[Status], code: ErrorCode, what: str
    ) -> None:
        if self.status not in allowed:
            raise DomainError(code, f"cannot {what} an order in status {self.status}")

    def check_attempt(self, leg: Leg, attempt: int) -> None:
        current = self.attempt_of(leg)
        if attempt != current:
            raise DomainError(
                ErrorCode.INVALID_TRANSITION,
                f"{leg} attempt {attempt} is not the current attempt {current}",
            )

    @staticmethod
    def check_same_outcome(recorded: str, reported: str, what: str) -> None:
        if recorded != reported:
            raise DomainError(
                ErrorCode.INVALID_TRANSITION,
                f"a different {what} was already recorded",
            )

    # ------------------------------------------------------------------ evolution

    def _trigger(self, event_class: type[Order.Event], cause: Cause, **fields: object) -> None:
        self.trigger_event(
            event_class,
            customer_id=self.customer_id,
            side=self.side.value,
            previous_hash=self.last_event_hash,
            **fields,
            **cause.stamp(),
        )

    def evolve(self, event: Order.Event) -> None:  # noqa: C901, PLR0912, PLR0915 - a branch per event
        """Apply an event to the state. Pure bookkeeping: every decision was made before."""
        match event:
            case Order.Quoted():
                self.customer_id = event.customer_id
                self.side = Side(event.side)
                self.source_id = event.source_id
                self.source_amount = event.source_amount
                self.destination_id = event.destination_id
                self.rate = event.rate
                self.fee = event.fee
                self.destination_amount = event.destination_amount
                self.indicative_rate = None
                self.indicative_destination_amount = None
                self.expires_at = event.expires_at
                self.max_slippage_bps = None
                self.provider_quote_id = event.provider_quote_id
                self.debit_reference = None
                self.refund_reference = None
                self.payout_reference = None
                self.payout_attempt = 1
                self.refund_attempt = 1
                self.failure_reason = None
                self.first_approval = None
                self.unresolved = None
                self.processed = {}
            case Order.Requoted():
                self.rate = event.rate
                self.fee = event.fee
                self.destination_amount = event.destination_amount
                self.expires_at = event.expires_at
                self.provider_quote_id = event.provider_quote_id
            case Order.Confirmed():
                self.max_slippage_bps = event.max_slippage_bps
            case Order.SourceDebited():
                self.debit_reference = event.reference
            case Order.SourceDebitFailed():
                self.failure_reason = event.reason
            case Order.ApprovalRecorded():
                self.first_approval = Actor(ActorKind(event.actor_kind), event.actor_id)
            case Order.Approved():
                self.indicative_rate = self.rate
                self.indicative_destination_amount = self.destination_amount
                self.rate = event.rate
                self.destination_amount = event.destination_amount
                self.provider_quote_id = event.provider_quote_id or self.provider_quote_id
            case Order.Rejected():
                self.failure_reason = event.reason
            case Order.Refunded():
                self.refund_reference = event.reference
            case Order.RefundFailed():
                self.failure_reason = event.reason
            case Order.RefundRetried():
                self.refund_attempt = event.attempt
                self.failure_reason = None
            case Order.MovementUnresolved():
                self.unresolved = (Leg(event.leg), event.attempt)
            case Order.PaidOut():
                self.payout_reference = event.reference
            case Order.PayoutFailed():
                self.failure_reason = event.reason
            case Order.PayoutRetried():
                self.payout_attempt = event.attempt
                self.failure_reason = None
        status = status_after(type(event).__name__, self.side)
        if status is not None:
            self.status = status
            self.unresolved = None  # a movement's outcome, or a new step, settles any flag
        if not (isinstance(event, Order.Expired) and event.observed):
            # An observed lapse is recorded by a command that was itself refused.
            self.processed[str(event.command_id)] = event.originator_version
        self.last_event_hash = event.event_hash


def status_after(event_name: str, side: Side) -> Status | None:
    """The status an order has after an event of this name (None: the event leaves it as it
    was): the lifecycle of DESIGN.md section 4 in one table, for the aggregate and for read
    models alike."""
    return LIFECYCLE[side][event_name]


def _lifecycle(side: Side) -> dict[str, Status | None]:
    buy = side is Side.BUY
    return {
        "Quoted": Status.QUOTED,
        "Requoted": Status.REQUOTED,
        "Expired": Status.EXPIRED,
        "Cancelled": Status.CANCELLED,
        "Confirmed": Status.DEBIT_PENDING if buy else Status.PENDING_APPROVAL,
        "SourceDebited": Status.PENDING_APPROVAL if buy else Status.PAYOUT_PENDING,
        "SourceDebitFailed": Status.FAILED,
        "Approved": Status.PAYOUT_PENDING if buy else Status.DEBIT_PENDING,
        "Rejected": Status.REFUND_PENDING if buy else Status.REJECTED,
        "Refunded": Status.REJECTED,
        "PaidOut": Status.COMPLETED,
        "PayoutFailed": Status.PAYOUT_FAILED,
        "PayoutRetried": Status.PAYOUT_PENDING,
        "RefundFailed": Status.REFUND_FAILED,
        "RefundRetried": Status.REFUND_PENDING,
        "ApprovalRecorded": None,
        "MovementUnresolved": None,
    }


LIFECYCLE: dict[Side, dict[str, Status | None]] = {side: _lifecycle(side) for side in Side}
"""Per side, the status after each event (None: unchanged); built once, read on every event
the aggregate and the read models apply."""


def checked_live_rate(live_rate: Decimal) -> Decimal:
    """The provider's live rate, kept like any rate; a provider answer that is not a usable
    rate means there is no live price to approve against."""
    try:
        return normalise_rate(live_rate)
    except DomainError:
        raise DomainError(
            ErrorCode.QUOTE_UNAVAILABLE, "the provider gave no usable live rate"
        ) from None


def plain(rate: Decimal) -> str:
    """A rate without trailing zeros or exponent, for people."""
    return format(rate.normalize(), "f")


def check_within_collar(rate: Decimal, live_rate: Decimal, collar_bps: int) -> None:
    low, high = collar(live_rate, collar_bps)
    if not low <= rate <= high:
        raise DomainError(
            ErrorCode.RATE_OUTSIDE_COLLAR,
            f"the rate {plain(rate)} is outside the collar of {collar_bps} bps around the live "
            f"rate {plain(live_rate)}: allowed {plain(low)} to {plain(high)} (an override with a "
            "reason can approve it)",
            field="rate",
        )


def checked_source_amount(side: Side, amount: Decimal, limits: SizeLimits) -> Decimal:
    """The source amount at its currency's places, within the configured size limits."""
    currency = side.source_currency
    amount = parse_amount(amount, currency, field="sourceAmount")
    check_size(
        amount, currency, limits.minimum[currency], limits.maximum[currency], field="sourceAmount"
    )
    return amount


def price_out(
    side: Side, source_amount: Decimal, terms: QuoteTerms
) -> tuple[Decimal, Decimal, Decimal]:
    """The normalised rate, the fee at the source currency's places, and the destination
    amount that a quote's terms give."""
    rate = normalise_rate(terms.rate)
    fee = round_down(terms.fee, side.source_currency)
    if terms.fee < 0 or terms.fee >= source_amount or fee != terms.fee:
        raise DomainError(ErrorCode.QUOTE_UNAVAILABLE, "the provider's fee is out of range")
    destination_amount = convert(source_amount, fee, rate, side.destination_currency)
    if destination_amount <= 0:
        raise DomainError(
            ErrorCode.AMOUNT_BELOW_MINIMUM,
            "the amount is too small to convert",
            field="sourceAmount",
        )
    return rate, fee, destination_amount
