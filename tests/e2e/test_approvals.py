"""Approval controls over HTTP with named operators: the price collar around the live rate (and
its override, recorded with the reason), dual control by two different operators, and the
operators' names in the history."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import httpx
import pytest

from services.resources.port import PLATFORM_CUSTOMER_ID
from tests.e2e.conftest import System
from tests.e2e.test_api import alice, bob, buy_body, confirm, problem, quote, sell_body

pytestmark = pytest.mark.e2e

ADA = "Ada Lovelace (demo operator)"
GRACE = "Grace Hopper (demo operator)"
LIVE_RATE = re.compile(
    r"live rate (?P<live>[0-9.]+): allowed (?P<low>[0-9.]+) to (?P<high>[0-9.]+)"
)


async def pending(system: System, client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    quoted = await quote(client, body)
    assert (await confirm(client, quoted)).status_code == 201
    await system.wait_status(client, quoted["id"], "pending_approval")
    order_id: str = quoted["id"]
    return order_id


async def history(ops: httpx.AsyncClient, order_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = (await ops.get(f"/ops/otc-exchanges/{order_id}/history")).json()[
        "events"
    ]
    return events


async def queued(ops: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    page = (await ops.get("/ops/otc-exchanges", params={"limit": 100})).json()
    [found] = [order for order in page["data"] if order["id"] == order_id]
    return found  # type: ignore[no-any-return]


async def test_a_rate_outside_the_collar_is_refused_and_an_override_is_recorded(
    system: System,
) -> None:
    me = alice(system)
    async with (
        system.client(me.write_key) as client,
        system.client(system.demo.operator_key) as ops,
    ):
        order_id = await pending(system, client, buy_body(me, "100.00"))

        refused = await ops.post(f"/ops/otc-exchanges/{order_id}/approve", json={"rate": "10.75"})

        body = problem(refused, 422, "RATE_OUTSIDE_COLLAR")
        collar = LIVE_RATE.search(body["detail"])
        assert collar is not None, body["detail"]
        live, low, high = (Decimal(collar.group(n)) for n in ("live", "low", "high"))
        assert low < live < high
        assert (await client.get(f"/otc-exchanges/{order_id}")).json()[
            "status"
        ] == "pending_approval"
        beyond = (high * Decimal("1.01")).quantize(Decimal("0.000001"))
        without_reason = await ops.post(
            f"/ops/otc-exchanges/{order_id}/approve", json={"rate": str(beyond), "override": True}
        )
        problem(without_reason, 422, "VALIDATION_ERROR")

        overridden = await ops.post(
            f"/ops/otc-exchanges/{order_id}/approve",
            json={"rate": str(beyond), "override": True, "reason": "client agreed by phone"},
        )

        assert overridden.status_code == 200, overridden.text
        assert overridden.json()["rate"] == str(beyond)
        approved = [e for e in await history(ops, order_id) if e["type"] == "Approved"]
        assert approved[0]["data"]["override"] is True
        assert approved[0]["data"]["overrideReason"] == "client agreed by phone"
        assert Decimal(approved[0]["data"]["liveRate"]) > 0
        assert approved[0]["actor"]["name"] == ADA
        await system.wait_status(client, order_id, "completed")


@pytest.mark.parametrize("rate", ["0", "0.0", "-1", "abc"])
async def test_a_rate_that_is_not_positive_is_a_validation_error_and_changes_nothing(
    system: System, rate: str
) -> None:
    me = bob(system)
    async with (
        system.client(me.write_key) as client,
        system.client(system.demo.operator_key) as ops,
    ):
        order_id = await pending(system, client, sell_body(me, "50.000000"))

        refused = await ops.post(f"/ops/otc-exchanges/{order_id}/approve", json={"rate": rate})

        body = problem(refused, 422, "VALIDATION_ERROR")
        assert body["field"] == "rate"
        assert [e["type"] for e in await history(ops, order_id)] == ["Quoted", "Confirmed"]


async def test_dual_control_needs_two_different_operators(system: System) -> None:
    me = alice(system)
    assert system.demo.second_operator_key is not None
    async with (
        system.client(me.write_key) as client,
        system.client(system.demo.operator_key) as ada,
        system.client(system.demo.second_operator_key) as grace,
    ):
        order_id = await pending(system, client, buy_body(me, "6000.00"))
        before = await queued(ada, order_id)
        assert before["dualControl"] is True
        assert before["awaitingSecondApproval"] is False

        first = await ada.post(f"/ops/otc-exchanges/{order_id}/approve")
        assert first.status_code == 200, first.text
        assert first.json()["status"] == "pending_approval"
        waiting = await queued(ada, order_id)
        assert waiting["awaitingSecondApproval"] is True
        assert [a["operatorName"] for a in waiting["approvals"]] == [ADA]
        again = await ada.post(f"/ops/otc-exchanges/{order_id}/approve")
        problem(again, 409, "SAME_APPROVER")

        second = await grace.post(f"/ops/otc-exchanges/{order_id}/approve")

        assert second.status_code == 200, second.text
        assert second.json()["status"] == "payout_pending"
        await system.wait_status(client, order_id, "completed")
        events = await history(ada, order_id)
    approvals = [(e["type"], e["actor"]["name"]) for e in events if "Approv" in e["type"]]
    assert approvals == [("ApprovalRecorded", ADA), ("Approved", GRACE)]
    assert all(e["actor"]["id"] != str(PLATFORM_CUSTOMER_ID) for e in events)


async def test_under_dual_control_either_operator_may_reject(system: System) -> None:
    me = bob(system)
    assert system.demo.second_operator_key is not None
    async with (
        system.client(me.write_key) as client,
        system.client(system.demo.operator_key) as ada,
        system.client(system.demo.second_operator_key) as grace,
    ):
        order_id = await pending(system, client, sell_body(me, "7000.000000"))
        assert (await ada.post(f"/ops/otc-exchanges/{order_id}/approve")).status_code == 200

        rejected = await grace.post(f"/ops/otc-exchanges/{order_id}/reject", json={"reason": "AML"})

        assert rejected.status_code == 200, rejected.text
        assert rejected.json()["status"] == "rejected"
        [reject] = [e for e in await history(ada, order_id) if e["type"] == "Rejected"]
        assert reject["actor"]["name"] == GRACE
