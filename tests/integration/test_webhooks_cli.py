"""`otc webhooks list|deliveries|replay` against a fresh database of each test's own."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from services.cli import app
from services.settings import Settings
from services.webhooks.model import NewEndpoint, WebhookEvent
from services.webhooks.store import PostgresWebhookStore

pytestmark = pytest.mark.integration

Otc = Callable[..., Result]
NOW = datetime.now(UTC)


@pytest.fixture
def otc(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Otc:
    monkeypatch.setenv("OTC_PG_DBNAME", settings.pg_dbname)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["webhooks", *args])


def ok(result: Result) -> Any:  # noqa: ANN401 - a JSON document
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def seed(settings: Settings) -> tuple[str, str]:
    """A customer's endpoint with three delivered order events; (endpoint id, customer id)."""

    async def run() -> tuple[str, str]:
        customer, order = uuid.uuid4(), uuid.uuid4()
        async with PostgresWebhookStore(settings) as store:
            await store.create_schema()
            new = NewEndpoint(
                uuid.uuid4(), customer, "https://hooks.example.com", "", (), b"sealed-secret"
            )
            endpoint, _ = await store.add_endpoint(new, NOW, limit=20)
            events = [
                WebhookEvent(
                    event_id=uuid.uuid5(order, str(v)),
                    customer_id=customer,
                    type="order.confirmed",
                    occurred_at=NOW - timedelta(minutes=10 - v),
                    body=b"{}",
                    order_id=order,
                    version=v,
                )
                for v in (1, 2, 3)
            ]
            await store.record(events, NOW)
        return str(endpoint.id), str(customer)

    return asyncio.run(run())


def test_list_shows_every_customer_s_endpoints_without_secrets(
    otc: Otc, settings: Settings
) -> None:
    endpoint_id, customer = seed(settings)
    seed(settings)

    everyone = ok(otc("list"))
    theirs = ok(otc("list", "--customer", customer))

    assert everyone["total"] == 2
    assert [e["id"] for e in theirs["data"]] == [endpoint_id]
    assert "sealed-secret" not in json.dumps(everyone)
    assert "secret" not in json.dumps(everyone).lower()


def test_deliveries_and_replay_of_one_endpoint(otc: Otc, settings: Settings) -> None:
    endpoint_id, _ = seed(settings)

    shown = ok(otc("deliveries", endpoint_id))
    since = (NOW - timedelta(minutes=8, seconds=30)).isoformat()
    queued = ok(otc("replay", endpoint_id, "--since", since))

    assert [d["orderVersion"] for d in shown["data"]] == [3, 2, 1]
    assert {d["status"] for d in shown["data"]} == {"pending"}
    assert shown["data"][0]["webhookId"].startswith("msg_")
    assert queued == {"endpointId": endpoint_id, "queued": 2}


def test_an_unknown_endpoint_is_refused(otc: Otc, settings: Settings) -> None:
    seed(settings)

    result = otc("deliveries", str(uuid.uuid4()))

    assert result.exit_code == 2
    assert "no webhook endpoint" in result.output
