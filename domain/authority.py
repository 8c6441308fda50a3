"""Command authority (DESIGN.md section 4): which actors may issue which command.

Customers quote, requote, confirm and cancel; operators (named people) approve, reject and
retry; the workers report the outcomes of the legs their own party moves; the expiry sweeper
expires. Anything else is refused with ACTOR_NOT_ALLOWED and changes nothing. The engine's
command table gives each command one `Authority`; this module says what each one allows.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import DomainError, ErrorCode
from domain.movements import MOVERS
from domain.order import Actor, ActorKind, Leg, Order

SWEEPER = "expiry-sweeper"


@dataclass(frozen=True)
class Authority:
    """Who may send a command. `kind` is the one actor kind allowed. System commands are
    either the sweeper's (`system`) or a worker's outcome of a leg (`leg` given by the command),
    which only the party that moves that leg for the order's side may report."""

    kind: ActorKind
    system: str | None = None

    def check(self, actor: Actor, order: Order | None, leg: Leg | None) -> None:
        if actor.kind is not self.kind:
            refuse(actor, f"only a {self.kind} may send this command")
        if actor.kind is ActorKind.OPERATOR and not actor.name:
            refuse(actor, "an operator's command must name the operator")
        if actor.kind is not ActorKind.SYSTEM:
            return
        if leg is None:
            if actor.id != self.system:
                refuse(actor, f"only {self.system} may send this command")
            return
        if order is not None and MOVERS.get((order.side, leg)) != actor.id:
            refuse(actor, f"{actor.id} does not move the {leg} of a {order.side}")


CUSTOMER = Authority(ActorKind.CUSTOMER)
OPERATOR = Authority(ActorKind.OPERATOR)
EXPIRY = Authority(ActorKind.SYSTEM, system=SWEEPER)
MOVER = Authority(ActorKind.SYSTEM)
"""A worker's outcome: the party is the one that moves the command's leg."""


def refuse(actor: Actor, why: str) -> None:
    raise DomainError(ErrorCode.ACTOR_NOT_ALLOWED, f"{actor.kind} {actor.id!r}: {why}")
