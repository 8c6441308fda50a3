"""What the gateway needs from outside, built by its composition root (services/gateway/
__main__.py), and how a route gets it: `GatewayDep`, from `app.state.gateway`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Protocol
from uuid import UUID

from fastapi import Depends, Request

from domain.order import Order
from domain.views import OrderView
from services.adapters.ports import WalletBalancePort
from services.auth.principal import Principal
from services.command_client import CommandClient
from services.gateway.console.ports import ConsolePorts
from services.gateway.positions import PositionWatch
from services.gateway.readiness import Report
from services.resources.port import ResourceDirectory


class OrderRow(Protocol):
    @property
    def customer_id(self) -> UUID: ...

    @property
    def view(self) -> OrderView: ...


class OrderReadModel(Protocol):
    """What the gateway reads: the `order_list` view (synchronous: called in a thread)."""

    def get(self, order_id: UUID) -> OrderRow | None: ...

    def list_for_customer(
        self, customer_id: UUID, *, page: int, limit: int
    ) -> tuple[list[Any], int]: ...

    def list_by_status(self, statuses: Any, *, page: int, limit: int) -> tuple[list[Any], int]: ...  # noqa: ANN401

    def list_needing_attention(self, *, page: int, limit: int) -> tuple[list[Any], int]: ...

    def max_tracking_id(self, application_name: str) -> int | None: ...


class Authenticator(Protocol):
    async def api_key(self, key: str) -> Principal | None: ...

    def bearer(self, token: str) -> Principal | None: ...


@dataclass
class Gateway:
    """The gateway's collaborators, built by its composition root."""

    resources: ResourceDirectory
    auth: Authenticator
    read_model: OrderReadModel
    commands: CommandClient
    balances: WalletBalancePort
    history: Callable[[UUID], Awaitable[list[Order.Event]]]
    reply_timeout: float = 10.0
    positions: PositionWatch = field(default_factory=PositionWatch)
    """How far the order list has got (fed by the composition root's `PositionListener`)."""
    read_your_writes_seconds: float = 2.0
    dual_control_eur: Decimal = Decimal("100000.00")
    readiness: Callable[[], Awaitable[Report]] | None = None
    retry_after_seconds: int = 5
    in_flight: set[tuple[UUID, UUID]] = field(default_factory=set)
    console: ConsolePorts = field(default_factory=ConsolePorts)
    """The operator console's sessions, live rates and monitor findings."""


def gateway(request: Request) -> Gateway:
    found: Gateway = request.app.state.gateway
    return found


GatewayDep = Annotated[Gateway, Depends(gateway)]
