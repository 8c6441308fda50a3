"""The one way to make a command: its envelope's id and time are filled here, at the edge, so
that the domain never makes an id or reads the clock (domain/commands.py only declares them).
Who sends it is one of the `ActorRef` constructors: `customer`, `operator` or `system`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID, uuid4

from domain.commands import ActorRef, Command

C = TypeVar("C", bound=Command)


def new_command(  # noqa: PLR0913 - the envelope's fields, by name
    cls: type[C],
    *,
    order_id: UUID,
    customer_id: UUID,
    actor: ActorRef,
    idempotency_key: UUID | None = None,
    command_id: UUID | None = None,
    issued_at: datetime | None = None,
    **fields: object,
) -> C:
    """A `cls` command with its own `fields`. Its id is fresh unless one is given (a command
    sent again after a crash must repeat its id to be a redelivery), and it is issued now
    unless `issued_at` says when."""
    return cls(
        command_id=uuid4() if command_id is None else command_id,
        order_id=order_id,
        customer_id=customer_id,
        actor=actor,
        idempotency_key=idempotency_key,
        issued_at=datetime.now(UTC) if issued_at is None else issued_at,
        **fields,
    )
