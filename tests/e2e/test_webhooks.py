"""Webhooks end to end: the whole system (the dispatcher one of its processes) delivering to
real local receivers, every delivery verified with the official `standardwebhooks` library.

Each test makes customers of its own (the schemathesis test registers endpoints at random for
the demo customers)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from services.auth.key_store import ApiKeyStore
from services.local.demo import DemoCustomer, make_customer
from services.local.webhook_receiver import LocalReceiver, Received
from services.resources.store import PostgresResourceDirectory
from services.webhooks.events import ORDER_EVENT_TYPES
from tests.e2e.conftest import System, new_key, server_side_identifiers
from tests.support import eventually, stored_order_events

pytestmark = pytest.mark.e2e

BUY_TYPES = ["order.quoted", "order.confirmed", "order.source_debited", "order.approved"]
SELL_TYPES = ["order.quoted", "order.confirmed", "order.approved", "order.source_debited"]


async def new_customer(system: System, name: str) -> DemoCustomer:
    async with (
        PostgresResourceDirectory(system.settings) as directory,
        ApiKeyStore(system.settings) as keys,
        httpx.AsyncClient(timeout=10) as sandboxes,
    ):
        return await make_customer(
            f"{name} {uuid.uuid4().hex[:6]}", system.settings, directory, keys, sandboxes
        )


@pytest.fixture
async def receiver() -> AsyncIterator[LocalReceiver]:
    local = LocalReceiver()
    await local.start()
    try:
        yield local
    finally:
        await local.stop()


@dataclass
class Hooked:
    """A customer with an endpoint on a local receiver."""

    customer: DemoCustomer
    client: httpx.AsyncClient
    endpoint: dict[str, Any]
    receiver: LocalReceiver

    @property
    def base(self) -> str:
        return f"/webhook-endpoints/{self.endpoint['id']}"

    def delivered(self) -> list[Received]:
        """What the receiver accepted (2xx), in the order it came."""
        return [r for r in self.receiver.received if 200 <= r.status < 300]


@asynccontextmanager
async def hook(system: System, name: str, receiver: LocalReceiver) -> AsyncIterator[Hooked]:
    customer = await new_customer(system, name)
    async with system.client(customer.write_key) as client:
        made = await client.post("/webhook-endpoints", json={"url": receiver.url})
        assert made.status_code == 201, made.text
        yield Hooked(customer, client, made.json(), receiver)


async def buy(system: System, hooked: Hooked, amount: str = "100.00") -> str:
    me = hooked.customer
    body = {
        "side": "buy",
        "sourceAccountId": me.active_account,
        "destinationWalletId": me.ethereum_wallet,
        "sourceAmount": amount,
    }
    return await settle(system, hooked, body, "pending_approval")


async def sell(system: System, hooked: Hooked, amount: str = "100.000000") -> str:
    me = hooked.customer
    body = {
        "side": "sell",
        "sourceWalletId": me.polygon_wallet,
        "destinationAccountId": me.active_account,
        "sourceAmount": amount,
    }
    return await settle(system, hooked, body, "pending_approval")


async def settle(system: System, hooked: Hooked, body: dict[str, str], before: str) -> str:
    """Quote, confirm, approve and wait until the order is completed."""
    client = hooked.client
    quoted = (await client.post("/otc-exchanges/quote", json=body)).json()
    confirmed = await client.post(
        "/otc-exchanges",
        json={"quoteId": quoted["id"], "side": body["side"]},
        headers={"Idempotency-Key": new_key()},
    )
    assert confirmed.status_code == 201, confirmed.text
    await system.wait_status(client, quoted["id"], before)
    async with system.client(system.demo.operator_key) as ops:
        approved = await ops.post(f"/ops/otc-exchanges/{quoted['id']}/approve")
        assert approved.status_code == 200, approved.text
    await system.wait_status(client, quoted["id"], "completed")
    order_id: str = quoted["id"]
    return order_id


def customer_facing_events(system: System, order_id: str) -> list[tuple[int, str]]:
    """(version, webhook type) of the order's events a customer receives, in version order."""
    found = []
    for order, version, name in stored_order_events(system.settings):
        kind = "order." + "".join(f"_{c.lower()}" if c.isupper() else c for c in name)[1:]
        if str(order) == order_id and kind in ORDER_EVENT_TYPES:
            found.append((version, kind))
    return found


def of_order(delivered: list[Received], order_id: str) -> list[Received]:
    firsts: dict[str, Received] = {}
    for webhook in delivered:
        data = webhook.message.get("data")
        if isinstance(data, dict) and data.get("id") == order_id:
            firsts.setdefault(webhook.headers["webhook-id"], webhook)
    return list(firsts.values())


async def all_delivered(system: System, hooked: Hooked, *orders: str) -> None:
    async def complete() -> bool:
        return all(
            len(of_order(hooked.delivered(), order)) == len(customer_facing_events(system, order))
            for order in orders
        )

    await eventually(complete, timeout=90, interval=0.3)


def assert_in_version_order(system: System, hooked: Hooked, order_id: str) -> None:
    """The order's webhooks arrived once each (first receipts), in version order, each the
    public order view after its event."""
    arrived = [w.message["type"] for w in of_order(hooked.delivered(), order_id)]
    expected = [kind for _, kind in customer_facing_events(system, order_id)]
    assert arrived == expected
    assert of_order(hooked.delivered(), order_id)[-1].message["data"]["status"] == "completed"  # type: ignore[index]


def verifies(secret: str, webhook: Received) -> bool:
    try:
        Webhook(secret).verify(webhook.body, webhook.headers)
    except WebhookVerificationError:
        return False
    return True


async def test_a_buy_and_a_sell_arrive_signed_in_version_order_across_a_secret_rotation(
    system: System, receiver: LocalReceiver
) -> None:
    async with hook(system, "Webhook Buyer", receiver) as hooked:
        first_secret = hooked.endpoint["secret"]
        bought = await buy(system, hooked)
        await all_delivered(system, hooked, bought)
        rotated = (await hooked.client.post(f"{hooked.base}/rotate-secret")).json()
        sold = await sell(system, hooked)
        await all_delivered(system, hooked, bought, sold)
        deliveries = (await hooked.client.get(f"{hooked.base}/deliveries?limit=100")).json()

    assert_in_version_order(system, hooked, bought)
    assert_in_version_order(system, hooked, sold)
    assert [w.message["type"] for w in of_order(hooked.delivered(), bought)][:4] == BUY_TYPES
    assert [w.message["type"] for w in of_order(hooked.delivered(), sold)][:4] == SELL_TYPES
    for webhook in of_order(hooked.delivered(), bought):
        assert verifies(first_secret, webhook), "delivered before the rotation"
    for webhook in of_order(hooked.delivered(), sold):
        assert webhook.headers["webhook-signature"].count("v1,") == 2
        assert verifies(first_secret, webhook), "the old secret signs during its grace"
        assert verifies(rotated["secret"], webhook)
    assert {d["status"] for d in deliveries["data"]} == {"succeeded"}
    assert deliveries["total"] == len(of_order(hooked.delivered(), bought)) + len(
        of_order(hooked.delivered(), sold)
    )
    bodies = " ".join(w.body.decode() for w in hooked.delivered())
    assert not [ref for ref in server_side_identifiers(system.settings) if ref in bodies]


async def test_customers_never_receive_or_see_each_other_s_webhooks(system: System) -> None:
    mine, theirs = LocalReceiver(), LocalReceiver()
    await mine.start()
    await theirs.start()
    try:
        async with (
            hook(system, "Alice Hooks", mine) as alice,
            hook(system, "Bob Hooks", theirs) as bob,
        ):
            alices = await quoted(alice)
            bobs = await quoted(bob)
            await eventually(lambda: of_order(alice.delivered(), alices), timeout=60)
            await eventually(lambda: of_order(bob.delivered(), bobs), timeout=60)
            peek = await alice.client.get(bob.base)
            listed = (await alice.client.get("/webhook-endpoints")).json()
            theirs_deliveries = await alice.client.get(f"{bob.base}/deliveries")
    finally:
        await mine.stop()
        await theirs.stop()

    assert not of_order(alice.delivered(), bobs)
    assert not of_order(bob.delivered(), alices)
    assert peek.status_code == 404
    assert peek.json()["code"] == "WEBHOOK_ENDPOINT_NOT_FOUND"
    assert theirs_deliveries.status_code == 404
    assert [e["id"] for e in listed["data"]] == [alice.endpoint["id"]]


async def quoted(hooked: Hooked) -> str:
    me = hooked.customer
    body = {
        "side": "buy",
        "sourceAccountId": me.active_account,
        "destinationWalletId": me.ethereum_wallet,
        "sourceAmount": "50.00",
    }
    response = await hooked.client.post("/otc-exchanges/quote", json=body)
    assert response.status_code == 200, response.text
    order_id: str = response.json()["id"]
    return order_id


async def test_a_receiver_down_for_a_while_then_up_gets_every_event_in_order_and_a_replay(
    system: System, receiver: LocalReceiver
) -> None:
    receiver.status = 503
    receiver.retry_after = "1"
    started = datetime.now(UTC)
    async with hook(system, "Flaky Receiver", receiver) as hooked:
        order = await buy(system, hooked)
        await eventually(lambda: len(receiver.received) >= 3, timeout=30)
        await receiver.stop()
        await asyncio.sleep(3)
        receiver.status, receiver.retry_after = 204, None
        await receiver.start()
        await all_delivered(system, hooked, order)
        deliveries = (await hooked.client.get(f"{hooked.base}/deliveries")).json()
        first_pass = list(hooked.delivered())
        replayed = await hooked.client.post(
            f"{hooked.base}/replay", json={"since": started.isoformat()}
        )
        await eventually(lambda: len(hooked.delivered()) >= 2 * len(first_pass), timeout=60)

    assert_in_version_order(system, hooked, order)
    assert any(r.status == 503 for r in receiver.received)
    assert {d["status"] for d in deliveries["data"]} == {"succeeded"}
    assert max(d["attempts"] for d in deliveries["data"]) >= 2
    assert replayed.status_code == 202
    assert replayed.json()["queued"] == len(first_pass)
    by_id: dict[str, bytes] = {}
    for webhook in hooked.delivered():
        assert by_id.setdefault(webhook.headers["webhook-id"], webhook.body) == webhook.body
        assert verifies(hooked.endpoint["secret"], webhook)
    assert len(by_id) == len(first_pass)


async def test_a_test_event_arrives_and_410_gone_disables_the_endpoint_saying_why(
    system: System, receiver: LocalReceiver
) -> None:
    async with hook(system, "Gone Receiver", receiver) as hooked:
        sent = await hooked.client.post(f"{hooked.base}/test")
        await eventually(hooked.delivered, timeout=30)
        receiver.status = 410
        await hooked.client.post(f"{hooked.base}/test")
        disabled = await eventually(lambda: disabled_endpoint(hooked), timeout=30, interval=0.3)
        refused = await hooked.client.post(f"{hooked.base}/test")

    [probe] = hooked.delivered()
    assert sent.status_code == 202
    assert probe.headers["webhook-id"] == sent.json()["webhookId"]
    assert json.loads(probe.body)["type"] == "webhook.test"
    assert verifies(hooked.endpoint["secret"], probe)
    assert "410" in disabled["disabledReason"]
    assert refused.json()["code"] == "WEBHOOK_ENDPOINT_DISABLED"


async def disabled_endpoint(hooked: Hooked) -> dict[str, Any] | None:
    shown: dict[str, Any] = (await hooked.client.get(hooked.base)).json()
    return None if shown["enabled"] else shown


async def test_the_ssrf_guard_refuses_private_and_metadata_addresses(system: System) -> None:
    customer = await new_customer(system, "Curious")
    async with system.client(customer.write_key) as client:
        answers = [
            await client.post("/webhook-endpoints", json={"url": url})
            for url in ("https://10.0.0.1/hook", "https://169.254.169.254/latest/meta-data/")
        ]
        loopback = await client.post(
            "/webhook-endpoints", json={"url": "http://127.0.0.1:8690/hook"}
        )

    assert [(a.status_code, a.json()["code"]) for a in answers] == [
        (422, "WEBHOOK_URL_NOT_ALLOWED"),
        (422, "WEBHOOK_URL_NOT_ALLOWED"),
    ]
    assert loopback.status_code == 201, "the e2e system allows loopback receivers"
