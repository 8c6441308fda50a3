"""Hypothesis stateful tests: one order, buy or sell, driven by random commands.

The model here is written from DESIGN.md section 4, independently of domain/order.py. For every
command it works out which refusals apply (none: the command must take effect, or be a no-op when
it repeats an outcome already recorded) and which status the order moves to. After every step the
order must agree with the model; a refused command, and any command on a final order, must leave
the aggregate exactly as it was.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal, localcontext
from enum import Enum, auto
from typing import Any, Literal
from uuid import UUID

from eventsourcing.application import Application
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from domain import commands as c
from domain.errors import DomainError, ErrorCode
from domain.money import RATE_PLACES, Currency, convert
from domain.order import (
    AWAITING,
    Actor,
    ActorKind,
    ApprovalControls,
    ApprovalRequest,
    Cause,
    Leg,
    Order,
    Side,
    Status,
)
from services.engine.handlers import COMMANDS
from tests.unit.strategies import (
    LIMITS,
    T0,
    amounts,
    is_exact_to_currency,
    rates,
    realistic_rates,
    sides,
    terms,
    written_variously,
)
from tests.unit.test_command_authority import ACTORS, OUTCOME_LEGS, allowed


class Act(Enum):
    """What a command does to an order when it takes effect."""

    CONFIRM = auto()
    CANCEL = auto()
    REQUOTE = auto()
    LAPSE = auto()
    APPROVE = auto()
    REJECT = auto()
    DEBIT = auto()
    DEBIT_FAILURE = auto()
    REFUND = auto()
    PAYOUT = auto()
    PAYOUT_FAILURE = auto()
    RETRY = auto()
    FIRST_APPROVAL = auto()
    REFUND_FAILURE = auto()
    RETRY_REFUND = auto()
    FLAG = auto()


OPEN = (Status.QUOTED, Status.REQUOTED)
FINAL_STATUSES = frozenset({Status.CANCELLED, Status.COMPLETED, Status.REJECTED, Status.FAILED})


def _transitions() -> dict[tuple[Side, Status, Act], Status]:
    """DESIGN.md section 4, as (side, status, act) -> next status."""
    table: dict[tuple[Side, Status, Act], Status] = {}
    for side in Side:
        for status in OPEN:
            table[side, status, Act.CANCEL] = Status.CANCELLED
            table[side, status, Act.LAPSE] = Status.EXPIRED
        for status in (*OPEN, Status.EXPIRED):
            table[side, status, Act.REQUOTE] = Status.REQUOTED
        table[side, Status.DEBIT_PENDING, Act.DEBIT_FAILURE] = Status.FAILED
        table[side, Status.PAYOUT_PENDING, Act.PAYOUT] = Status.COMPLETED
        table[side, Status.PAYOUT_PENDING, Act.PAYOUT_FAILURE] = Status.PAYOUT_FAILED
        table[side, Status.PAYOUT_FAILED, Act.RETRY] = Status.PAYOUT_PENDING
    for status in OPEN:
        table[Side.BUY, status, Act.CONFIRM] = Status.DEBIT_PENDING
        table[Side.SELL, status, Act.CONFIRM] = Status.PENDING_APPROVAL
    # Buy: the EUR is debited before approval and refunded on rejection.
    table[Side.BUY, Status.DEBIT_PENDING, Act.DEBIT] = Status.PENDING_APPROVAL
    table[Side.BUY, Status.PENDING_APPROVAL, Act.APPROVE] = Status.PAYOUT_PENDING
    table[Side.BUY, Status.PENDING_APPROVAL, Act.REJECT] = Status.REFUND_PENDING
    table[Side.BUY, Status.REFUND_PENDING, Act.REFUND] = Status.REJECTED
    table[Side.BUY, Status.REFUND_PENDING, Act.REFUND_FAILURE] = Status.REFUND_FAILED
    table[Side.BUY, Status.REFUND_FAILED, Act.RETRY_REFUND] = Status.REFUND_PENDING
    table[Side.BUY, Status.REFUND_PENDING, Act.FLAG] = Status.REFUND_PENDING
    # Dual control: a first approval leaves the order waiting for a second operator.
    for side in Side:
        table[side, Status.PENDING_APPROVAL, Act.FIRST_APPROVAL] = Status.PENDING_APPROVAL
        table[side, Status.DEBIT_PENDING, Act.FLAG] = Status.DEBIT_PENDING
        table[side, Status.PAYOUT_PENDING, Act.FLAG] = Status.PAYOUT_PENDING
    # Sell: nothing moves before approval; the USDC is debited after it.
    table[Side.SELL, Status.PENDING_APPROVAL, Act.APPROVE] = Status.DEBIT_PENDING
    table[Side.SELL, Status.PENDING_APPROVAL, Act.REJECT] = Status.REJECTED
    table[Side.SELL, Status.DEBIT_PENDING, Act.DEBIT] = Status.PAYOUT_PENDING
    return table


TRANSITIONS = _transitions()


def exact_conversion(source: Decimal, fee: Decimal, rate: Decimal, currency: Currency) -> Decimal:
    """(source - fee) x rate, computed exactly, then rounded down to the currency's places."""
    with localcontext() as context:
        context.prec = 100
        return ((source - fee) * rate).quantize(currency.quantum, rounding=ROUND_DOWN)


def rate_as_kept(rate: Decimal) -> Decimal:
    """Rates are kept to RATE_PLACES places, rounded down."""
    with localcontext() as context:
        context.prec = 100
        return rate.quantize(Decimal(1).scaleb(-RATE_PLACES), rounding=ROUND_DOWN)


def outside_collar(rate: Decimal, live: Decimal, collar_bps: int) -> bool:
    with localcontext() as context:
        context.prec = 100
        return abs(rate - live) * 10_000 > live * collar_bps


def worse_than_allowed(indicative: Decimal, final: Decimal, max_slippage_bps: int) -> bool:
    with localcontext() as context:
        context.prec = 100
        return final < indicative * (1 - Decimal(max_slippage_bps) / 10_000)


def replayable_state(order: Order) -> dict[str, Any]:
    """A deep copy of every attribute but the events not yet saved: what a repository rebuilds."""
    return copy.deepcopy(
        {name: value for name, value in vars(order).items() if name != "_pending_events"}
    )


def state_of(order: Order) -> dict[str, Any]:
    """A copy of every attribute. The pending events are frozen dataclasses of immutable values:
    a new list of the same events copies them as well as a (much slower) deep copy would."""
    return {**replayable_state(order), "_pending_events": list(order.pending_events)}


@dataclass
class Model:
    """What the order should be, per DESIGN.md."""

    side: Side
    customer_id: UUID
    source_amount: Decimal
    fee: Decimal
    quote_rate: Decimal
    quote_destination: Decimal
    expires_at: datetime
    status: Status = Status.QUOTED
    max_slippage_bps: int | None = None
    final_rate: Decimal | None = None
    debit_reference: str | None = None
    refund_reference: str | None = None
    payout_reference: str | None = None
    attempt: int = 1
    refund_attempt: int = 1
    confirmed_fee: Decimal | None = None
    collar_bps: int = 200
    dual_control_eur: Decimal = Decimal(10**15)
    first_approver: str | None = None
    flagged: tuple[Leg, int] | None = None
    override_reason: str | None = None
    # (actor kind, actor id, command id, time) of every event, in order.
    stamps: list[tuple[str, str, UUID, datetime]] = field(default_factory=list)
    processed: dict[str, int] = field(default_factory=dict)

    def allows(self, act: Act) -> bool:
        return (self.side, self.status, act) in TRANSITIONS

    def lapsed(self, now: datetime) -> bool:
        return self.status in OPEN and now >= self.expires_at

    @property
    def eur_value(self) -> Decimal:
        return self.source_amount if self.side is Side.BUY else self.quote_destination

    def attempt_of(self, leg: Leg) -> int:
        return {Leg.DEBIT: 1, Leg.REFUND: self.refund_attempt, Leg.PAYOUT: self.attempt}[leg]


OPERATOR = Actor(ActorKind.OPERATOR, "operator-1", "Ada")
SECOND_OPERATOR = Actor(ActorKind.OPERATOR, "operator-2", "Bo")
operators = st.sampled_from([OPERATOR, SECOND_OPERATOR])
WORKER = Actor(ActorKind.SYSTEM, "worker")
SWEEPER = Actor(ActorKind.SYSTEM, "expiry-sweeper")
STRANGER = Actor(ActorKind.CUSTOMER, str(UUID(int=7)))
ttls = st.integers(1, 120).map(lambda seconds: timedelta(seconds=seconds))
references = st.sampled_from(["ref-a", "ref-b"])
attempt_offsets = st.sampled_from([-1, 0, 0, 1])
Moment = Literal["now", "just before expiry", "at expiry"]
moments: st.SearchStrategy[Moment] = st.sampled_from(
    ["now", "now", "just before expiry", "at expiry"]
)


class OrderMachine(RuleBasedStateMachine):
    order: Order
    model: Model

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.issued = 1000
        self.states_by_version: dict[int, dict[str, Any]] = {}

    # ------------------------------------------------------------ plumbing

    def cause(self, actor: Actor) -> Cause:
        self.issued += 1
        return Cause(actor, UUID(int=self.issued), self.now)

    @property
    def customer(self) -> Actor:
        return Actor(ActorKind.CUSTOMER, str(self.model.customer_id))

    def decide(
        self,
        command: Callable[[Cause], None],
        actor: Actor,
        *,
        act: Act | None,
        refusals: set[ErrorCode],
        records_command: bool = True,
    ) -> bool:
        """Run a command; True if it took effect (the caller then updates the model further).

        `refusals` non-empty: it must be refused with one of them. Empty: it must take effect as
        `act`, or be a no-op when `act` is None.
        """
        cause = self.cause(actor)
        before = state_of(self.order)
        was_final = self.model.status in FINAL_STATUSES
        refusal: DomainError | None = None
        try:
            command(cause)
        except DomainError as error:
            refusal = error
        if refusal is not None:
            event(f"refused with {refusal.code}")
            assert refusal.code in refusals, f"{refusal!r}, expected {refusals}"
            assert vars(self.order) == before, "a refused command changed the order"
            return False
        assert not refusals, f"not refused; expected one of {refusals}"
        if act is None or was_final:
            assert vars(self.order) == before, "a no-op or a command on a final order changed it"
            return False
        self.model.status = TRANSITIONS[self.model.side, self.model.status, act]
        if act not in (Act.FLAG, Act.FIRST_APPROVAL):
            self.model.flagged = None  # every step that changes the status settles a flag
        event(f"{self.model.side} reached {self.model.status}")
        event(f"took effect: {act.name}")
        self.model.stamps.append(
            (cause.actor.kind.value, cause.actor.id, cause.command_id, cause.now)
        )
        if records_command:
            self.model.processed[str(cause.command_id)] = len(self.model.stamps)
        self.states_by_version[self.order.version] = replayable_state(self.order)
        return True

    # ------------------------------------------------------------ the quote

    @initialize(side=sides, customer_id=st.uuids(), ttl=ttls, data=st.data())
    def request_quote(
        self, side: Side, customer_id: UUID, ttl: timedelta, data: st.DataObject
    ) -> None:
        self.request_quote_with(side, customer_id, ttl, data)
        self.model.collar_bps = data.draw(st.integers(0, 500), label="collar_bps")
        dual = data.draw(st.booleans(), label="dual_control")
        self.model.dual_control_eur = self.model.eur_value if dual else self.model.eur_value * 2 + 1

    @property
    def controls(self) -> ApprovalControls:
        return ApprovalControls(self.model.collar_bps, self.model.dual_control_eur)

    def request_quote_with(
        self, side: Side, customer_id: UUID, ttl: timedelta, data: st.DataObject
    ) -> None:
        source = side.source_currency
        source_amount = data.draw(amounts(source, LIMITS.minimum[source], Decimal(100_000)))
        fee = data.draw(
            amounts(source, Decimal(0), source_amount / 10) | st.just(source.quantum * 0)
        )
        rate = data.draw(realistic_rates(side))
        written_amount = data.draw(written_variously(source_amount), label="written_amount")
        written_fee = data.draw(written_variously(fee), label="written_fee")
        cause = self.cause(Actor(ActorKind.CUSTOMER, str(customer_id)))

        self.order = Order.request_quote(
            order_id=UUID(int=1),
            customer_id=customer_id,
            side=side,
            source_id=UUID(int=2),
            destination_id=UUID(int=3),
            source_amount=written_amount,
            limits=LIMITS,
            terms=terms(rate, written_fee, self.now + ttl),
            cause=cause,
        )

        destination = exact_conversion(source_amount, fee, rate, side.destination_currency)
        self.model = Model(side, customer_id, source_amount, fee, rate, destination, self.now + ttl)
        self.model.stamps.append(("customer", str(customer_id), cause.command_id, self.now))
        self.model.processed[str(cause.command_id)] = 1
        self.states_by_version[1] = replayable_state(self.order)

    # ------------------------------------------------------------ time

    @rule(seconds=st.integers(1, 90))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    def wait_for(self, moment: Moment) -> None:
        """Move the clock to the edge of the quote's expiry, unless it is already past it."""
        if moment == "just before expiry":
            self.now = max(self.now, self.model.expires_at - timedelta(microseconds=1))
        elif moment == "at expiry":
            self.now = max(self.now, self.model.expires_at)

    @rule(moment=moments)
    def observe_time(self, moment: Moment = "now") -> None:
        self.wait_for(moment)
        self.decide(
            self.order.observe_time,
            self.customer,
            act=Act.LAPSE if self.model.lapsed(self.now) else None,
            refusals=set(),
            records_command=False,
        )

    @rule(moment=moments)
    def expire(self, moment: Moment = "now") -> None:
        self.wait_for(moment)
        act: Act | None
        refusals: set[ErrorCode]
        if self.model.status is Status.EXPIRED:
            act, refusals = None, set()
        elif self.model.lapsed(self.now):
            act, refusals = Act.LAPSE, set()
        else:
            act, refusals = Act.LAPSE, {ErrorCode.INVALID_TRANSITION}
        self.decide(self.order.expire, SWEEPER, act=act, refusals=refusals)

    # ------------------------------------------------------------ the customer

    @rule(side=sides, max_slippage_bps=st.none() | st.integers(-2, 300), moment=moments)
    def confirm(self, side: Side, max_slippage_bps: int | None, moment: Moment = "now") -> None:
        self.wait_for(moment)
        refusals: set[ErrorCode] = set()
        if side is not self.model.side:
            refusals.add(ErrorCode.SIDE_MISMATCH)
        if self.model.status is Status.EXPIRED or self.model.lapsed(self.now):
            refusals.add(ErrorCode.QUOTE_EXPIRED)
        elif not self.model.allows(Act.CONFIRM):
            refusals.add(ErrorCode.INVALID_TRANSITION)
        if max_slippage_bps is not None and max_slippage_bps < 0:
            refusals.add(ErrorCode.VALIDATION_ERROR)

        if self.decide(
            lambda cause: self.order.confirm(side, max_slippage_bps, cause),
            self.customer,
            act=Act.CONFIRM,
            refusals=refusals,
        ):
            self.model.max_slippage_bps = max_slippage_bps
            self.model.confirmed_fee = self.model.fee

    @rule()
    def cancel(self) -> None:
        refusals = set() if self.model.allows(Act.CANCEL) else {ErrorCode.NOT_CANCELLABLE}
        self.decide(self.order.cancel, self.customer, act=Act.CANCEL, refusals=refusals)

    @rule(ttl=ttls, data=st.data())
    def requote(self, ttl: timedelta, data: st.DataObject) -> None:
        self.requote_with(ttl, data, fee_is_valid=data.draw(st.booleans(), label="fee_is_valid"))

    def requote_with(self, ttl: timedelta, data: st.DataObject, *, fee_is_valid: bool) -> None:
        source = self.model.side.source_currency
        rate = data.draw(realistic_rates(self.model.side), label="rate")
        if fee_is_valid:
            fee = data.draw(amounts(source, Decimal(0), self.model.source_amount / 10))
            written_fee = data.draw(written_variously(fee), label="written_fee")
        else:
            fee = data.draw(
                st.sampled_from(
                    [
                        -source.quantum,
                        self.model.source_amount,
                        self.model.source_amount + source.quantum,
                        source.quantum / 10,
                    ]
                ),
                label="invalid_fee",
            )
            written_fee = fee
        refusals: set[ErrorCode] = set()
        if not self.model.allows(Act.REQUOTE):
            refusals.add(ErrorCode.INVALID_TRANSITION)
        if not fee_is_valid:
            refusals.add(ErrorCode.QUOTE_UNAVAILABLE)
        expires_at = self.now + ttl

        if self.decide(
            lambda cause: self.order.requote(terms(rate, written_fee, expires_at), cause),
            self.customer,
            act=Act.REQUOTE,
            refusals=refusals,
        ):
            self.model.fee = fee
            self.model.quote_rate = rate
            self.model.quote_destination = exact_conversion(
                self.model.source_amount, fee, rate, self.model.side.destination_currency
            )
            self.model.expires_at = expires_at

    @rule()
    def check_owner_refuses_another_customer(self) -> None:
        self.decide(
            lambda _: self.order.check_owner(STRANGER),
            STRANGER,
            act=None,
            refusals={ErrorCode.ORDER_NOT_FOUND},
        )

    # ------------------------------------------------------------ the operator

    @rule(data=st.data(), operator=operators)
    def approve(self, data: st.DataObject, operator: Actor) -> None:
        indicative = self.model.quote_rate
        live = data.draw(
            st.integers(-400, 400).map(lambda bps: indicative * (10_000 + bps) / 10_000),
            label="live_rate",
        )
        explicit = data.draw(
            st.none()
            | st.integers(-600, 600).map(lambda bps: live * (10_000 + bps) / 10_000)
            | self.rates_at_the_slippage_limit()
            | self.rates_at_the_collar(live)
            | st.sampled_from([Decimal(0), Decimal(-1), Decimal("1E-10"), Decimal("1E-11")])
            | rates(),
            label="explicit_rate",
        )
        override = data.draw(st.booleans(), label="override")
        reason = data.draw(st.sampled_from([None, "", "  ", "desk call with the LP"]))
        self.approve_at(ApprovalRequest(explicit, live, "lp-final", override, reason), operator)

    def rates_at_the_slippage_limit(self) -> st.SearchStrategy[Decimal]:
        """Exactly at the limit, one rate unit beyond it, and one basis point beyond it."""
        indicative = self.model.quote_rate
        limit = Decimal(self.model.max_slippage_bps or 0)
        at_the_limit = indicative * (1 - limit / 10_000)
        return st.sampled_from(
            [
                at_the_limit,
                at_the_limit - Decimal(1).scaleb(-RATE_PLACES),
                indicative * (1 - (limit + 1) / 10_000),
            ]
        )

    def rates_at_the_collar(self, live: Decimal) -> st.SearchStrategy[Decimal]:
        """Both ends of the collar around the live rate, and one rate unit beyond each."""
        width = live * self.model.collar_bps / 10_000
        unit = Decimal(1).scaleb(-RATE_PLACES)
        return st.sampled_from(
            [live - width, live - width - unit, live + width, live + width + unit]
        )

    def approval_refusals(
        self, request: ApprovalRequest, live: Decimal, kept: Decimal, destination: Decimal
    ) -> set[ErrorCode]:
        """Every refusal an approval earns before dual control is considered."""
        model = self.model
        refusals: set[ErrorCode] = set()
        if not model.allows(Act.APPROVE):
            refusals.add(ErrorCode.INVALID_TRANSITION)
        if kept <= 0 or destination <= 0:
            refusals.add(ErrorCode.VALIDATION_ERROR)
        if request.override and (
            request.rate is None or request.reason is None or not request.reason.strip()
        ):
            refusals.add(ErrorCode.VALIDATION_ERROR)
        if not request.override and kept > 0 and outside_collar(kept, live, model.collar_bps):
            refusals.add(ErrorCode.RATE_OUTSIDE_COLLAR)
        limit = model.max_slippage_bps
        if kept > 0 and limit is not None and worse_than_allowed(model.quote_rate, kept, limit):
            refusals.add(ErrorCode.SLIPPAGE_EXCEEDED)
        return refusals

    def approve_at(self, request: ApprovalRequest, operator: Actor = OPERATOR) -> None:
        model = self.model
        live = rate_as_kept(request.live_rate)
        offered = live if request.rate is None else request.rate
        kept = rate_as_kept(offered) if offered > 0 else offered
        destination = exact_conversion(
            model.source_amount, model.fee, kept, model.side.destination_currency
        )
        refusals = self.approval_refusals(request, live, kept, destination)
        act = Act.APPROVE
        if model.eur_value >= model.dual_control_eur:
            if model.first_approver is None:
                act = Act.FIRST_APPROVAL
            elif model.first_approver == operator.id:
                refusals.add(ErrorCode.SAME_APPROVER)

        if self.decide(
            lambda cause: self.order.approve(request, self.controls, cause),
            operator,
            act=act,
            refusals=refusals,
        ):
            if act is Act.FIRST_APPROVAL:
                model.first_approver = operator.id
                return
            model.final_rate = kept
            approved = self.order.pending_events[-1]
            assert isinstance(approved, Order.Approved)
            assert approved.override is request.override
            assert approved.live_rate == live
            assert approved.override_reason == (request.reason if request.override else None)
            assert approved.actor_name == operator.name

    @rule()
    def reject(self) -> None:
        refusals = set() if self.model.allows(Act.REJECT) else {ErrorCode.INVALID_TRANSITION}
        self.decide(
            lambda cause: self.order.reject("rejected by operator", cause),
            OPERATOR,
            act=Act.REJECT,
            refusals=refusals,
        )

    @rule()
    def retry_payout(self) -> None:
        refusals = set() if self.model.allows(Act.RETRY) else {ErrorCode.INVALID_TRANSITION}
        if self.decide(self.order.retry_payout, OPERATOR, act=Act.RETRY, refusals=refusals):
            self.model.attempt += 1

    # ------------------------------------------------------------ the workers' outcomes

    def outcome_with_reference(
        self, recorded: str | None, reported: str, act: Act
    ) -> tuple[Act | None, set[ErrorCode]]:
        """A reference already recorded: the same one is a no-op, another a conflict."""
        if recorded is not None:
            return None, set() if reported == recorded else {ErrorCode.INVALID_TRANSITION}
        return act, set() if self.model.allows(act) else {ErrorCode.INVALID_TRANSITION}

    @rule(reference=references)
    def record_source_debit(self, reference: str) -> None:
        act, refusals = self.outcome_with_reference(
            self.model.debit_reference, reference, Act.DEBIT
        )
        if self.decide(
            lambda cause: self.order.record_source_debit(reference, cause),
            WORKER,
            act=act,
            refusals=refusals,
        ):
            self.model.debit_reference = reference

    @rule()
    def record_source_debit_failure(self) -> None:
        act: Act | None
        refusals: set[ErrorCode]
        if self.model.status is Status.FAILED:
            act, refusals = None, set()
        elif self.model.allows(Act.DEBIT_FAILURE):
            act, refusals = Act.DEBIT_FAILURE, set()
        else:
            act, refusals = Act.DEBIT_FAILURE, {ErrorCode.INVALID_TRANSITION}
        self.decide(
            lambda cause: self.order.record_source_debit_failure("insufficient funds", cause),
            WORKER,
            act=act,
            refusals=refusals,
        )

    @rule(offset=attempt_offsets, reference=references)
    def record_refund(self, reference: str, offset: int = 0) -> None:
        attempt = max(1, self.model.refund_attempt + offset)
        act, refusals = self.outcome_with_reference(
            self.model.refund_reference, reference, Act.REFUND
        )
        if act is not None and attempt != self.model.refund_attempt:
            refusals = {ErrorCode.INVALID_TRANSITION}
        if self.decide(
            lambda cause: self.order.record_refund(attempt, reference, cause),
            WORKER,
            act=act,
            refusals=refusals,
        ):
            self.model.refund_reference = reference

    @rule(offset=attempt_offsets)
    def record_refund_failure(self, offset: int) -> None:
        attempt = max(1, self.model.refund_attempt + offset)
        act, refusals = self.failure_outcome(
            attempt, self.model.refund_attempt, Status.REFUND_FAILED, Act.REFUND_FAILURE
        )
        self.decide(
            lambda cause: self.order.record_refund_failure(attempt, "ACCOUNT_CLOSED", cause),
            WORKER,
            act=act,
            refusals=refusals,
        )

    @rule()
    def retry_refund(self) -> None:
        refusals = set() if self.model.allows(Act.RETRY_REFUND) else {ErrorCode.INVALID_TRANSITION}
        if self.decide(self.order.retry_refund, OPERATOR, act=Act.RETRY_REFUND, refusals=refusals):
            self.model.refund_attempt += 1

    @rule(leg=st.sampled_from(Leg), offset=attempt_offsets)
    def flag_unresolved(self, leg: Leg, offset: int) -> None:
        """A worker could not learn a movement's outcome: the order is flagged, nothing else."""
        attempt = max(1, self.model.attempt_of(leg) + offset)
        act: Act | None = Act.FLAG
        refusals: set[ErrorCode] = set()
        if self.model.flagged == (leg, attempt):
            act = None
        elif attempt != self.model.attempt_of(leg) or self.model.status is not AWAITING[leg]:
            refusals = {ErrorCode.INVALID_TRANSITION}
        if self.decide(
            lambda cause: self.order.record_movement_unresolved(leg, attempt, "timeout", cause),
            WORKER,
            act=act,
            refusals=refusals,
        ):
            self.model.flagged = (leg, attempt)

    def failure_outcome(
        self, attempt: int, current: int, failed: Status, act: Act
    ) -> tuple[Act | None, set[ErrorCode]]:
        """A failure already recorded (an earlier attempt, or this one once failed) is a no-op;
        otherwise only the current attempt of a pending movement may fail."""
        if attempt < current or (self.model.status is failed and attempt == current):
            return None, set()
        if attempt == current and self.model.allows(act):
            return act, set()
        return act, {ErrorCode.INVALID_TRANSITION}

    @rule(offset=attempt_offsets, reference=references)
    def record_payout(self, offset: int, reference: str) -> None:
        attempt = max(1, self.model.attempt + offset)
        act, refusals = self.outcome_with_reference(
            self.model.payout_reference, reference, Act.PAYOUT
        )
        if act is not None and attempt != self.model.attempt:
            refusals = {ErrorCode.INVALID_TRANSITION}
        if self.decide(
            lambda cause: self.order.record_payout(attempt, reference, cause),
            WORKER,
            act=act,
            refusals=refusals,
        ):
            self.model.payout_reference = reference

    @rule(offset=attempt_offsets)
    def record_payout_failure(self, offset: int) -> None:
        attempt = max(1, self.model.attempt + offset)
        act, refusals = self.failure_outcome(
            attempt, self.model.attempt, Status.PAYOUT_FAILED, Act.PAYOUT_FAILURE
        )
        self.decide(
            lambda cause: self.order.record_payout_failure(attempt, "address rejected", cause),
            WORKER,
            act=act,
            refusals=refusals,
        )

    # ------------------------------------------------------------ authority

    @rule(
        command=st.sampled_from(sorted(COMMANDS, key=lambda command: command.__name__)),
        actor=st.sampled_from(sorted(ACTORS)),
        leg=st.sampled_from(Leg),
    )
    def command_from_any_actor(self, command: type[c.Command], actor: str, leg: Leg) -> None:
        """The engine's authority check, on this order as it stands: an actor the table does
        not allow is refused with ACTOR_NOT_ALLOWED, and the order is left as it was."""
        moved = OUTCOME_LEGS.get(command, leg if command is c.RecordMovementUnresolved else None)
        before = state_of(self.order)
        refusal: DomainError | None = None
        try:
            COMMANDS[command].authority.check(ACTORS[actor], self.order, moved)
        except DomainError as error:
            refusal = error
        assert (refusal is None) == allowed(command, actor, self.model.side, moved)
        assert refusal is None or refusal.code is ErrorCode.ACTOR_NOT_ALLOWED
        assert state_of(self.order) == before

    # ------------------------------------------------------------ progress

    @rule(steps=st.integers(1, 12), data=st.data())
    def advance(self, steps: int, data: st.DataObject) -> None:
        """A few steps forward along the lifecycle, so that random runs reach its far end."""
        for _ in range(steps):
            self.step_forward(data)

    @rule(data=st.data())
    def advance_one_step(self, data: st.DataObject) -> None:
        self.step_forward(data)

    def step_forward(self, data: st.DataObject) -> None:
        forward: dict[Status, Callable[[st.DataObject], None]] = {
            Status.QUOTED: self.forward_from_open_quote,
            Status.REQUOTED: self.forward_from_open_quote,
            Status.EXPIRED: lambda data: self.requote_with(
                timedelta(seconds=60), data, fee_is_valid=True
            ),
            Status.DEBIT_PENDING: self.forward_from_debit_pending,
            Status.PENDING_APPROVAL: self.forward_from_pending_approval,
            Status.REFUND_PENDING: self.forward_from_refund_pending,
            Status.REFUND_FAILED: lambda _: self.retry_refund(),
            Status.PAYOUT_PENDING: self.forward_from_payout_pending,
            Status.PAYOUT_FAILED: lambda _: self.retry_payout(),
        }
        if self.model.status in forward:
            forward[self.model.status](data)

    def forward_from_open_quote(self, data: st.DataObject) -> None:
        if self.model.lapsed(self.now):
            self.observe_time()
        elif data.draw(st.integers(0, 5), label="wait_for_expiry") == 0:
            self.now = self.model.expires_at
        else:
            limit = data.draw(
                st.none() | st.just(0) | st.integers(0, 100), label="max_slippage_bps"
            )
            self.confirm(self.model.side, limit)

    def maybe_flag(self, leg: Leg, data: st.DataObject) -> None:
        """Sometimes the worker cannot learn the outcome at first: the order is flagged."""
        if data.draw(st.integers(0, 3), label="outcome_unknown_first") == 0:
            self.flag_unresolved(leg, 0)

    def forward_from_debit_pending(self, data: st.DataObject) -> None:
        self.maybe_flag(Leg.DEBIT, data)
        if data.draw(st.integers(0, 4), label="debit_fails") == 0:
            self.record_source_debit_failure()
        else:
            self.record_source_debit("ref-a")

    def forward_from_refund_pending(self, data: st.DataObject) -> None:
        self.maybe_flag(Leg.REFUND, data)
        if data.draw(st.integers(0, 3), label="refund_fails") == 0:
            self.record_refund_failure(0)
        else:
            self.record_refund("ref-a")

    def forward_from_pending_approval(self, data: st.DataObject) -> None:
        if data.draw(st.integers(0, 4), label="rejected") == 0:
            self.reject()
            return
        worst = self.model.max_slippage_bps
        within = st.integers(-100 if worst is None else -worst, 100).map(
            lambda bps: self.model.quote_rate * (10_000 + bps) / 10_000
        )
        live = data.draw(within | self.rates_at_the_slippage_limit(), label="live_rate")
        other = SECOND_OPERATOR if self.model.first_approver == OPERATOR.id else OPERATOR
        operator = data.draw(st.sampled_from([other, other, OPERATOR]), label="approver")
        self.approve_at(ApprovalRequest(None, live, "lp-final"), operator)

    def forward_from_payout_pending(self, data: st.DataObject) -> None:
        self.maybe_flag(Leg.PAYOUT, data)
        offset = data.draw(attempt_offsets, label="attempt_offset")
        if data.draw(st.booleans(), label="payout_fails"):
            self.record_payout_failure(offset)
        else:
            self.record_payout(offset, "ref-a")

    # ------------------------------------------------------------ invariants

    @invariant()
    def status_follows_the_lifecycle(self) -> None:
        assert isinstance(self.order.status, Status)
        assert self.order.status is self.model.status
        assert self.order.is_final == (self.model.status in FINAL_STATUSES)

    @invariant()
    def source_amount_and_fee_never_change_but_by_a_requote(self) -> None:
        assert self.order.source_amount == self.model.source_amount
        assert self.order.fee == self.model.fee
        if self.model.confirmed_fee is not None:
            assert self.order.fee == self.model.confirmed_fee

    @invariant()
    def destination_amount_follows_the_rate_in_force(self) -> None:
        order, model = self.order, self.model
        destination = order.destination_currency
        rate = model.quote_rate if model.final_rate is None else model.final_rate
        assert order.rate == rate
        assert order.destination_amount == convert(
            order.source_amount, order.fee, rate, destination
        )
        assert order.destination_amount == exact_conversion(
            model.source_amount, model.fee, rate, destination
        )
        if model.final_rate is None:
            assert (order.indicative_rate, order.indicative_destination_amount) == (None, None)
        else:
            assert order.indicative_rate == model.quote_rate
            assert order.indicative_destination_amount == model.quote_destination

    @invariant()
    def money_is_exact_to_the_currency_places(self) -> None:
        order = self.order
        assert is_exact_to_currency(order.source_amount, order.source_currency)
        assert is_exact_to_currency(order.fee, order.source_currency)
        assert is_exact_to_currency(order.destination_amount, order.destination_currency)
        if order.indicative_destination_amount is not None:
            assert is_exact_to_currency(
                order.indicative_destination_amount, order.destination_currency
            )

    @invariant()
    def outcomes_are_recorded_once(self) -> None:
        order, model = self.order, self.model
        assert order.debit_reference == model.debit_reference
        assert order.refund_reference == model.refund_reference
        assert order.payout_reference == model.payout_reference
        assert order.payout_attempt == model.attempt
        assert order.refund_attempt == model.refund_attempt
        assert order.unresolved == model.flagged
        assert (order.first_approval.id if order.first_approval else None) == model.first_approver
        assert order.max_slippage_bps == model.max_slippage_bps

    @invariant()
    def every_event_says_who_caused_it(self) -> None:
        events = self.order.pending_events
        assert self.order.version == len(events) == len(self.model.stamps)
        for version, (stored, stamp) in enumerate(zip(events, self.model.stamps, strict=True), 1):
            assert isinstance(stored, Order.Event)
            assert stored.originator_version == version
            assert (
                stored.actor_kind,
                stored.actor_id,
                stored.command_id,
                stored.timestamp,
            ) == stamp
            assert (stored.customer_id, stored.side) == (self.model.customer_id, self.model.side)

    @invariant()
    def processed_maps_each_command_that_took_effect_to_its_version(self) -> None:
        assert self.order.processed == self.model.processed

    def teardown(self) -> None:
        """Saved and reloaded, the order is the same, and every version it went through replays."""
        if not hasattr(self, "order"):
            return
        app = Application[UUID](env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        app.save(self.order)

        assert app.repository.get(self.order.id) == self.order
        for version, state in self.states_by_version.items():
            replayed: Order = app.repository.get(self.order.id, version=version)
            assert replayable_state(replayed) == state


OrderMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("OTC_STATE_MACHINE_EXAMPLES", "200")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOrderStateMachine = OrderMachine.TestCase
