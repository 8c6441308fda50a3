"""Command authority: every cell of (command, actor, side) against the engine's command table.

The expectation is written here from DESIGN.md section 4, independently of domain/authority.py:
customers quote, requote, confirm and cancel; named operators approve, reject and retry; the
workers report the outcomes of the legs their own party moves; the sweeper expires.
"""

from __future__ import annotations

import pytest

from domain import commands as c
from domain.authority import SWEEPER
from domain.errors import DomainError, ErrorCode
from domain.order import Actor, ActorKind, Leg, Side
from services.engine.handlers import COMMANDS
from tests.unit.strategies import CUSTOMER, new_order

OPERATOR = Actor(ActorKind.OPERATOR, "2b9d7c5e-0f0e-4b0a-9d6e-3c1b5b7e9a51", "Ada Lovelace")
NAMELESS_OPERATOR = Actor(ActorKind.OPERATOR, "2b9d7c5e-0f0e-4b0a-9d6e-3c1b5b7e9a52")
EUR_TREASURY = Actor(ActorKind.SYSTEM, "eur-treasury")
USDC_CHAIN = Actor(ActorKind.SYSTEM, "usdc-chain")
EXPIRY_SWEEPER = Actor(ActorKind.SYSTEM, SWEEPER)
STRANGER_PROCESS = Actor(ActorKind.SYSTEM, "bench-worker")
ACTORS = {
    "customer": CUSTOMER,
    "operator": OPERATOR,
    "nameless operator": NAMELESS_OPERATOR,
    "eur-treasury": EUR_TREASURY,
    "usdc-chain": USDC_CHAIN,
    "sweeper": EXPIRY_SWEEPER,
    "other process": STRANGER_PROCESS,
}

CUSTOMER_COMMANDS = {c.RequestQuote, c.Requote, c.ConfirmQuote, c.CancelOrder}
OPERATOR_COMMANDS = {c.ApproveOrder, c.RejectOrder, c.RetryPayout, c.RetryRefund}
OUTCOME_LEGS: dict[type[c.Command], Leg] = {
    c.RecordSourceDebit: Leg.DEBIT,
    c.RecordSourceDebitFailure: Leg.DEBIT,
    c.RecordRefund: Leg.REFUND,
    c.RecordRefundFailure: Leg.REFUND,
    c.RecordPayout: Leg.PAYOUT,
    c.RecordPayoutFailure: Leg.PAYOUT,
}
# Who moves what: EUR legs are the treasury's, USDC legs the chain worker's. A sell has no refund.
MOVER = {
    (Side.BUY, Leg.DEBIT): "eur-treasury",
    (Side.BUY, Leg.REFUND): "eur-treasury",
    (Side.BUY, Leg.PAYOUT): "usdc-chain",
    (Side.SELL, Leg.DEBIT): "usdc-chain",
    (Side.SELL, Leg.PAYOUT): "eur-treasury",
}


def allowed(command: type[c.Command], actor: str, side: Side, leg: Leg | None) -> bool:
    if command in CUSTOMER_COMMANDS:
        return actor == "customer"
    if command in OPERATOR_COMMANDS:
        return actor == "operator"
    if command is c.ExpireQuote:
        return actor == "sweeper"
    assert leg is not None, command
    return MOVER.get((side, leg)) == actor


def cells() -> list[tuple[type[c.Command], str, Side, Leg | None]]:
    found: list[tuple[type[c.Command], str, Side, Leg | None]] = []
    for command in COMMANDS:
        every_leg: list[Leg | None] = list(Leg)
        legs = every_leg if command is c.RecordMovementUnresolved else [OUTCOME_LEGS.get(command)]
        found.extend(
            (command, actor, side, leg) for actor in ACTORS for side in Side for leg in legs
        )
    return found


def test_the_table_covers_every_command() -> None:
    assert set(COMMANDS) == set(c.COMMAND_TYPES.values())


@pytest.mark.parametrize(("command", "actor", "side", "leg"), cells())
def test_only_the_allowed_actor_may_send_a_command(
    command: type[c.Command], actor: str, side: Side, leg: Leg | None
) -> None:
    order = new_order(side, "1000.00" if side is Side.BUY else "1000.000000", "1.08", "0")
    check = COMMANDS[command].authority.check

    if allowed(command, actor, side, leg):
        check(ACTORS[actor], order, leg)
    else:
        with pytest.raises(DomainError) as refusal:
            check(ACTORS[actor], order, leg)
        assert refusal.value.code is ErrorCode.ACTOR_NOT_ALLOWED
        assert refusal.value.status == 403
