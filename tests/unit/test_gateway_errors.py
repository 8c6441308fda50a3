"""Every error the gateway answers is a problem with a code, the unexpected ones included: the
app in process, its collaborators faked, the failures forced."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast
from uuid import UUID

import httpx
import psycopg
import pytest
from aiokafka.errors import KafkaConnectionError

from services.adapters.fakes import FakeWalletBalances
from services.auth.principal import OperatorIdentity, Principal, Scope
from services.command_client import CommandClient, CommandNotSentError
from services.gateway.app import create_app, with_gateway
from services.gateway.ports import Gateway, OrderReadModel
from services.gateway.readiness import Report
from services.resources.fake import InMemoryResourceDirectory
from services.resources.port import PLATFORM_CUSTOMER_ID

CUSTOMER = uuid.uuid4()
KEY = {"x-api-key": "otc_test"}


class Caller:
    async def api_key(self, key: str) -> Principal | None:
        del key
        return Principal(CUSTOMER, frozenset({Scope.READ, Scope.WRITE}), "key-1", "api-key")

    def bearer(self, token: str) -> Principal | None:
        del token
        return None


class FailingResources(InMemoryResourceDirectory):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def accounts_of(self, customer_id: UUID) -> list[Any]:
        del customer_id
        raise self.error


class Unsent:
    """A command client whose broker is away."""

    async def send_timed(self, command: object, *, timeout: float) -> object:  # noqa: ASYNC109
        del command, timeout
        raise CommandNotSentError("the broker did not take the command in 10s")


async def no_history(order_id: UUID) -> list[Any]:
    del order_id
    return []


def gateway(**changes: Any) -> Gateway:  # noqa: ANN401 - Gateway's fields
    fields: dict[str, Any] = {
        "resources": InMemoryResourceDirectory(),
        "auth": Caller(),
        "read_model": cast("OrderReadModel", None),
        "commands": cast("CommandClient", Unsent()),
        "balances": FakeWalletBalances(),
        "history": no_history,
        "retry_after_seconds": 7,
        **changes,
    }
    return Gateway(**fields)


async def client_for(gw: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(lambda app: with_gateway(app, gw), retry_after_seconds=7)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway") as client,
    ):
        yield client


@pytest.fixture
async def crashing() -> AsyncIterator[httpx.AsyncClient]:
    resources = FailingResources(RuntimeError("secret detail: /srv/otc/db.py line 12"))
    async for client in client_for(gateway(resources=resources)):
        yield client


async def test_an_unexpected_exception_is_a_problem_500_with_a_correlation_id(
    crashing: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="services.http_errors"):
        response = await crashing.get("/otc-exchanges/accounts", headers=KEY)

    body = response.json()
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert body["code"] == "INTERNAL_ERROR"
    assert body["status"] == 500
    correlation_id = body["correlationId"]
    assert response.headers["x-correlation-id"] == correlation_id
    assert correlation_id in body["detail"]
    assert "secret detail" not in response.text
    assert "Traceback" not in response.text
    assert correlation_id in caplog.text
    assert "RuntimeError: secret detail" in caplog.text


async def test_a_correlation_id_the_caller_sent_is_the_one_answered(
    crashing: httpx.AsyncClient,
) -> None:
    response = await crashing.get(
        "/otc-exchanges/accounts", headers={**KEY, "X-Correlation-Id": "caller-chosen-id-42"}
    )

    assert response.json()["correlationId"] == "caller-chosen-id-42"
    assert response.headers["x-correlation-id"] == "caller-chosen-id-42"


async def test_a_malformed_correlation_id_is_replaced(crashing: httpx.AsyncClient) -> None:
    response = await crashing.get(
        "/otc-exchanges/accounts", headers={**KEY, "X-Correlation-Id": "<script>"}
    )

    assert response.json()["correlationId"] != "<script>"


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("consuming input failed: server closed the connection"),
        KafkaConnectionError("Unable to bootstrap"),
    ],
)
async def test_a_dependency_outage_is_a_problem_503_with_retry_after(error: Exception) -> None:
    async for client in client_for(gateway(resources=FailingResources(error))):
        response = await client.get("/otc-exchanges/accounts", headers=KEY)

        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "7"
        assert response.json()["code"] == "SERVICE_UNAVAILABLE"
        assert "server closed" not in response.text


async def test_a_command_the_broker_did_not_take_is_a_503() -> None:
    async for client in client_for(gateway()):
        response = await client.post(
            "/otc-exchanges/quote",
            headers=KEY,
            json={
                "side": "buy",
                "sourceAccountId": str(uuid.uuid4()),
                "destinationWalletId": str(uuid.uuid4()),
                "sourceAmount": "100.00",
            },
        )

        assert response.status_code == 503
        assert response.json()["code"] == "SERVICE_UNAVAILABLE"
        assert "Idempotency-Key" in response.json()["detail"]


async def test_errors_answered_by_handlers_carry_the_correlation_id_too() -> None:
    async for client in client_for(gateway()):
        response = await client.get("/otc-exchanges/accounts")

        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert len(response.headers["x-correlation-id"]) >= 8


async def test_ready_is_503_with_retry_after_and_the_lags_when_a_check_fails() -> None:
    async def report() -> Report:
        return Report(
            ready=False,
            checks={"database": "ok", "relay": "failing: lag 5000 over 1000"},
            lags={"relay": 5000, "projector": 0},
        )

    async for client in client_for(gateway(readiness=report)):
        response = await client.get("/ready")

        assert response.status_code == 503
        assert response.headers["retry-after"] == "7"
        assert response.json() == {
            "status": "not ready",
            "checks": {"database": "ok", "relay": "failing: lag 5000 over 1000"},
            "lags": {"relay": 5000, "projector": 0},
        }


async def test_ready_is_200_with_the_lags_when_every_check_passes() -> None:
    async def report() -> Report:
        return Report(ready=True, checks={"database": "ok"}, lags={"relay": 3})

    async for client in client_for(gateway(readiness=report)):
        response = await client.get("/ready")

        assert response.status_code == 200
        assert response.json()["lags"] == {"relay": 3}


BAD_KEY = {**KEY, "Idempotency-Key": "not-a-uuid-v4"}


def problem_code(response: httpx.Response) -> tuple[int, str]:
    assert response.headers["content-type"] == "application/problem+json"
    return response.status_code, response.json()["code"]


async def test_a_malformed_body_is_refused_before_a_malformed_idempotency_key() -> None:
    async for client in client_for(gateway()):
        response = await client.post("/otc-exchanges", headers=BAD_KEY, json={"side": "buy"})

        assert problem_code(response) == (422, "VALIDATION_ERROR")


async def test_a_malformed_idempotency_key_is_refused_before_the_amount_is_read() -> None:
    body = {
        "sourceAccountId": str(uuid.uuid4()),
        "destinationWalletId": str(uuid.uuid4()),
        "sourceAmount": "100.001",
    }
    async for client in client_for(gateway()):
        response = await client.post("/otc-exchanges/quote", headers=BAD_KEY, json=body)

        assert problem_code(response) == (400, "IDEMPOTENCY_KEY_INVALID")


OPERATOR = Principal(
    PLATFORM_CUSTOMER_ID,
    frozenset(Scope),
    "key-2",
    "api-key",
    OperatorIdentity(uuid.uuid4(), "Ada Operator"),
)


class Desk(Caller):
    async def api_key(self, key: str) -> Principal | None:
        del key
        return OPERATOR


@pytest.mark.parametrize(
    ("path", "caller"),
    [("/otc-exchanges/{id}/cancel", Caller()), ("/ops/otc-exchanges/{id}/retry-payout", Desk())],
)
async def test_a_malformed_idempotency_key_is_refused_before_the_order_is_looked_up(
    path: str, caller: Caller
) -> None:
    async for client in client_for(gateway(auth=caller)):  # no read model: a lookup is a 500
        response = await client.post(path.format(id=uuid.uuid4()), headers=BAD_KEY)

        assert problem_code(response) == (400, "IDEMPOTENCY_KEY_INVALID")


class BehindReadModel:
    """An order list that has not caught up with the event store (a projector after an outage)."""

    def get(self, order_id: UUID) -> None:
        del order_id


def history_of(owner: UUID) -> Any:  # noqa: ANN401 - the gateway's history port
    async def history(order_id: UUID) -> list[Any]:
        del order_id
        return [SimpleNamespace(customer_id=owner)]

    return history


@pytest.mark.parametrize(
    ("path", "caller"),
    [("/otc-exchanges/{id}/cancel", Caller()), ("/ops/otc-exchanges/{id}/retry-payout", Desk())],
)
async def test_a_command_on_an_order_the_order_list_has_not_shown_yet_is_sent(
    path: str, caller: Caller
) -> None:
    """Not 404: the order is in the event store. The fake broker is away, so a sent command is
    a 503; before, the order list's silence answered 404 and the client gave up on its order."""
    gw = gateway(
        auth=caller,
        read_model=cast("OrderReadModel", BehindReadModel()),
        history=history_of(CUSTOMER),
    )
    async for client in client_for(gw):
        response = await client.post(path.format(id=uuid.uuid4()), headers=KEY)

        assert problem_code(response) == (503, "SERVICE_UNAVAILABLE")


@pytest.mark.parametrize("owner", [None, uuid.uuid4()])
async def test_a_customer_s_command_on_an_order_that_is_not_theirs_or_none_is_404(
    owner: UUID | None,
) -> None:
    gw = gateway(
        read_model=cast("OrderReadModel", BehindReadModel()),
        history=no_history if owner is None else history_of(owner),
    )
    async for client in client_for(gw):
        response = await client.post(f"/otc-exchanges/{uuid.uuid4()}/cancel", headers=KEY)

        assert problem_code(response) == (404, "ORDER_NOT_FOUND")
