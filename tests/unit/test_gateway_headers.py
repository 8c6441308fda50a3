"""The headers clients act on: `Location` on a 201, `Retry-After` on every 502, 503 and 504
(from the engine's refusal, the gateway's own error or a dependency's outage)."""

from __future__ import annotations

import uuid
from typing import Any, cast

import pytest

from domain import commands as c
from domain.errors import ErrorCode
from services.command_client import Answered, CommandClient, CommandTimeoutError
from services.contract_examples import EXAMPLE_ORDER_VIEW
from services.contracts import ErrorBody, ReplyEnvelope
from tests.unit.test_gateway_errors import KEY, client_for, gateway

QUOTE = {
    "sourceAccountId": str(uuid.uuid4()),
    "destinationWalletId": str(uuid.uuid4()),
    "sourceAmount": "100.00",
}


class Engine:
    """A command client answered at once: the order after the command, or a refusal."""

    def __init__(self, refusal: ErrorCode | None = None, status: int = 502) -> None:
        self.refusal, self.status = refusal, status

    async def send_timed(self, command: c.Command, *, timeout: float) -> Answered:  # noqa: ASYNC109
        del timeout
        if self.refusal is not None:
            error = ErrorBody(status=self.status, code=self.refusal, message="no price now")
            reply = ReplyEnvelope(command_id=command.command_id, ok=False, error=error)
        else:
            order = {**EXAMPLE_ORDER_VIEW, "id": str(command.order_id)}
            reply = ReplyEnvelope(command_id=command.command_id, ok=True, order=order)
        return Answered(reply, engine_timing=None, received_ms=0.0)


class Silent:
    async def send_timed(self, command: object, *, timeout: float) -> Any:  # noqa: ANN401, ASYNC109
        del command, timeout
        raise CommandTimeoutError


def commands(client: object) -> CommandClient:
    return cast("CommandClient", client)


async def test_a_confirmed_order_is_located() -> None:
    quote_id = uuid.uuid4()
    headers = {**KEY, "Idempotency-Key": str(uuid.uuid4())}
    async for client in client_for(gateway(commands=commands(Engine()))):
        response = await client.post(
            "/otc-exchanges", headers=headers, json={"quoteId": str(quote_id), "side": "buy"}
        )

        assert response.status_code == 201
        assert response.headers["location"] == f"/otc-exchanges/{quote_id}"


async def test_a_quote_is_200_and_not_located() -> None:
    async for client in client_for(gateway(commands=commands(Engine()))):
        response = await client.post("/otc-exchanges/quote", headers=KEY, json=QUOTE)

        assert response.status_code == 200
        assert "location" not in response.headers


@pytest.mark.parametrize(
    ("engine", "status"),
    [(Engine(ErrorCode.QUOTE_UNAVAILABLE), 502), (Silent(), 504)],
)
async def test_a_gateway_or_upstream_failure_says_when_to_retry(
    engine: object, status: int
) -> None:
    async for client in client_for(gateway(commands=commands(engine))):
        response = await client.post("/otc-exchanges/quote", headers=KEY, json=QUOTE)

        assert response.status_code == status
        assert response.headers["retry-after"] == "7"


async def test_a_refusal_that_is_not_a_failure_says_nothing_of_retrying() -> None:
    engine = Engine(ErrorCode.SOURCE_NOT_FOUND, status=422)
    async for client in client_for(gateway(commands=commands(engine))):
        response = await client.post("/otc-exchanges/quote", headers=KEY, json=QUOTE)

        assert response.status_code == 422
        assert "retry-after" not in response.headers
