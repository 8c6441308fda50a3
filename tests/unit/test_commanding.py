from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from domain import commands as c
from domain.commands import ActorRef
from domain.order import Side
from services.commanding import new_command

ORDER = UUID(int=1)
CUSTOMER = UUID(int=2)


def test_a_new_command_gets_a_fresh_id_and_is_issued_now() -> None:
    before = datetime.now(UTC)

    first = new_command(
        c.CancelOrder, order_id=ORDER, customer_id=CUSTOMER, actor=ActorRef.customer(CUSTOMER)
    )
    second = new_command(
        c.CancelOrder, order_id=ORDER, customer_id=CUSTOMER, actor=ActorRef.customer(CUSTOMER)
    )

    assert first.command_id != second.command_id
    assert before <= first.issued_at <= datetime.now(UTC)
    assert first.idempotency_key is None


def test_a_given_id_and_time_are_kept_so_that_a_resent_command_is_a_redelivery() -> None:
    issued = datetime(2030, 1, 2, tzinfo=UTC)

    command = new_command(
        c.ExpireQuote,
        order_id=ORDER,
        customer_id=CUSTOMER,
        actor=ActorRef.system("expiry-sweeper"),
        command_id=UUID(int=3),
        issued_at=issued,
    )

    assert command.command_id == UUID(int=3)
    assert command.issued_at == issued


def test_the_commands_own_fields_and_the_envelope_both_arrive() -> None:
    key = UUID(int=4)

    command = new_command(
        c.ConfirmQuote,
        order_id=ORDER,
        customer_id=CUSTOMER,
        actor=ActorRef.customer(CUSTOMER),
        idempotency_key=key,
        side=Side.SELL,
        max_slippage_bps=25,
    )

    assert isinstance(command, c.ConfirmQuote)
    assert (command.order_id, command.customer_id, command.idempotency_key) == (
        ORDER,
        CUSTOMER,
        key,
    )
    assert command.actor == ActorRef.customer(CUSTOMER)
    assert (command.side, command.max_slippage_bps) == (Side.SELL, 25)
