"""End to end over HTTP, every process a real subprocess on the real broker and database: the
buy and sell flows of seed 000, operator approval and rejection, every documented error code,
pagination, tenant isolation, scopes and Idempotency-Key handling."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from services.local.demo import DemoCustomer
from services.timings import parse_timing
from tests.e2e.conftest import QUOTE_TTL_SECONDS, System, new_key, server_side_identifiers

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"


def alice(system: System) -> DemoCustomer:
    return system.demo.customers[0]


def bob(system: System) -> DemoCustomer:
    return system.demo.customers[1]


def buy_body(customer: DemoCustomer, amount: str = "100.00", **changes: str) -> dict[str, Any]:
    body = {
        "side": "buy",
        "sourceAccountId": customer.active_account,
        "destinationWalletId": customer.ethereum_wallet,
        "sourceAmount": amount,
    }
    return {**body, **changes}


def sell_body(customer: DemoCustomer, amount: str = "100.000000", **changes: str) -> dict[str, Any]:
    body = {
        "side": "sell",
        "sourceWalletId": customer.polygon_wallet,
        "destinationAccountId": customer.active_account,
        "sourceAmount": amount,
    }
    return {**body, **changes}


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    return body


async def quote(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/otc-exchanges/quote", json=body)
    assert response.status_code == 200, response.text
    quoted: dict[str, Any] = response.json()
    return quoted


async def confirm(
    client: httpx.AsyncClient, quoted: dict[str, Any], key: str | None = None
) -> httpx.Response:
    return await client.post(
        "/otc-exchanges",
        json={"quoteId": quoted["id"], "side": quoted["side"]},
        headers={"Idempotency-Key": key or new_key()},
    )


# ------------------------------------------------------------------------------- flows


async def test_buy_flow_from_quote_to_completed(system: System) -> None:
    me = alice(system)
    async with (
        system.client(me.write_key) as client,
        system.client(system.demo.operator_key) as ops,
    ):
        quoted = await quote(client, buy_body(me, "1000.00"))
        confirmed = await confirm(client, quoted)
        assert confirmed.status_code == 201
        assert confirmed.json()["status"] == "debit_pending"
        await system.wait_status(client, quoted["id"], "pending_approval")
        queue = (await ops.get("/ops/otc-exchanges", params={"limit": 100})).json()
        assert quoted["id"] in [order["id"] for order in queue["data"]]
        approved = await ops.post(f"/ops/otc-exchanges/{quoted['id']}/approve")
        assert approved.status_code == 200, approved.text
        done = await system.wait_status(client, quoted["id"], "completed")

    assert quoted["quoteId"] == quoted["id"]
    assert (quoted["status"], quoted["sourceCurrency"], quoted["destinationCurrency"]) == (
        "quoted",
        "EUR",
        "USDC",
    )
    assert done["indicativeRate"] == quoted["rate"]
    assert done["indicativeDestinationAmount"] == quoted["destinationAmount"]
    assert done["sourceAmount"] == "1000.00"
    assert len(done["destinationAmount"].split(".")[1]) == 6


async def test_sell_flow_from_quote_to_completed(system: System) -> None:
    me = alice(system)
    async with (
        system.client(me.write_key) as client,
        system.client(system.demo.operator_key) as ops,
    ):
        quoted = await quote(client, sell_body(me, "250.000000"))
        confirmed = await confirm(client, quoted)
        assert confirmed.status_code == 201
        assert confirmed.json()["status"] == "pending_approval"
        approved = await ops.post(
            f"/ops/otc-exchanges/{quoted['id']}/approve", json={"rate": "0.9200"}
        )
        assert approved.status_code == 200, approved.text
        done = await system.wait_status(client, quoted["id"], "completed")
        history = (await ops.get(f"/ops/otc-exchanges/{quoted['id']}/history")).json()

    assert done["rate"] == "0.9200"
    assert done["destinationCurrency"] == "EUR"
    assert [event["type"] for event in history["events"]] == [
        "Quoted",
        "Confirmed",
        "Approved",
        "SourceDebited",
        "PaidOut",
    ]


async def test_the_get_right_after_a_write_shows_the_write(system: System) -> None:
    """Read-your-writes: each answer waited for the order list to reach its write."""
    me = bob(system)
    async with system.client(me.write_key) as client:
        for amount in ("21.00", "22.00", "23.00"):
            quoted = await quote(client, buy_body(me, amount))
            after_quote = await client.get(f"/otc-exchanges/{quoted['id']}")
            confirmed = await confirm(client, quoted)
            after_confirm = await client.get(f"/otc-exchanges/{quoted['id']}")

            assert after_quote.status_code == 200, after_quote.text
            assert after_quote.json()["sourceAmount"] == amount
            assert confirmed.status_code == 201, confirmed.text
            assert after_confirm.json()["status"] != "quoted"


async def test_a_command_says_where_its_time_went(system: System) -> None:
    """Server-Timing on a command's answer: the gateway's round trip and read-your-writes wait,
    the Kafka legs, and the engine's stages of the batch that decided it."""
    me = bob(system)
    async with system.client(me.write_key) as client:
        response = await client.post("/otc-exchanges/quote", json=buy_body(me, "24.00"))

    assert response.status_code == 200, response.text
    stages = parse_timing(response.headers.get("server-timing"))
    expected = {"command", "publish", "queue", "load", "outside", "save", "reply", "read"}
    assert expected <= set(stages), stages
    assert stages["command"] >= stages["save"] > 0


async def test_operator_rejects_a_buy_and_the_eur_is_refunded(system: System) -> None:
    me = bob(system)
    async with (
        system.client(me.write_key) as client,
        system.client(system.demo.operator_key) as ops,
    ):
        quoted = await quote(client, buy_body(me, "300.00"))
        assert (await confirm(client, quoted)).status_code == 201
        await system.wait_status(client, quoted["id"], "pending_approval")
        rejected = await ops.post(
            f"/ops/otc-exchanges/{quoted['id']}/reject", json={"reason": "KYC"}
        )
        assert rejected.status_code == 200
        assert rejected.json()["status"] == "refund_pending"
        done = await system.wait_status(client, quoted["id"], "rejected")

    assert done["status"] == "rejected"


async def test_operator_rejects_a_sell_and_nothing_moves(system: System) -> None:
    me = bob(system)
    async with (
        system.client(me.write_key) as client,
        system.client(system.demo.operator_key) as ops,
    ):
        quoted = await quote(client, sell_body(me, "20.000000"))
        assert (await confirm(client, quoted)).status_code == 201
        rejected = await ops.post(f"/ops/otc-exchanges/{quoted['id']}/reject")

    assert rejected.status_code == 200
    assert rejected.json()["status"] == "rejected"


async def test_selectors_list_only_eligible_resources(system: System) -> None:
    me = alice(system)
    async with system.client(me.read_key) as client:
        accounts = (await client.get("/otc-exchanges/accounts")).json()["data"]
        wallets = (await client.get("/otc-exchanges/wallets")).json()["data"]
        balance = await client.get(f"/otc-exchanges/wallets/{me.polygon_wallet}/balance")

    assert [a["id"] for a in accounts] == [me.active_account]
    assert accounts[0]["currency"] == "EUR"
    assert len(accounts[0]["ibanLast4"]) == 4
    assert {w["id"] for w in wallets} == {me.ethereum_wallet, me.polygon_wallet}
    assert balance.status_code == 200
    assert balance.json()["network"] == "polygon"
    assert len(balance.json()["usdcBalance"].split(".")[1]) == 6


# ------------------------------------------------------------------------------- error codes


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"sourceAccountId": str(uuid.uuid4())}, "SOURCE_NOT_FOUND"),
        ({"sourceAccountId": "usd_account"}, "SOURCE_WRONG_CURRENCY"),
        ({"sourceAccountId": "inactive_account"}, "SOURCE_INACTIVE"),
        ({"destinationWalletId": str(uuid.uuid4())}, "DESTINATION_NOT_FOUND"),
        ({"destinationWalletId": "wallet_without_address"}, "DESTINATION_NO_USDC_ADDRESS"),
    ],
)
async def test_buy_quote_refusals(system: System, changes: dict[str, str], code: str) -> None:
    me = alice(system)
    resolved = {k: getattr(me, v, v) for k, v in changes.items()}
    async with system.client(me.write_key) as client:
        response = await client.post("/otc-exchanges/quote", json=buy_body(me, **resolved))

    problem(response, 422, code)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"sourceWalletId": str(uuid.uuid4())}, "SOURCE_WALLET_NOT_FOUND"),
        ({"sourceWalletId": "wallet_without_address"}, "SOURCE_WALLET_NO_USDC"),
        ({"sourceAmount": "999999.000000"}, "SOURCE_WALLET_INSUFFICIENT"),
        ({"destinationAccountId": str(uuid.uuid4())}, "DESTINATION_ACCOUNT_NOT_FOUND"),
        ({"destinationAccountId": "usd_account"}, "DESTINATION_ACCOUNT_WRONG_CURRENCY"),
        ({"destinationAccountId": "inactive_account"}, "DESTINATION_ACCOUNT_INACTIVE"),
    ],
)
async def test_sell_quote_refusals(system: System, changes: dict[str, str], code: str) -> None:
    me = alice(system)
    resolved = {k: getattr(me, v, v) for k, v in changes.items()}
    async with system.client(me.write_key) as client:
        response = await client.post("/otc-exchanges/quote", json=sell_body(me, **resolved))

    problem(response, 422, code)


async def test_chain_outage_is_quote_unavailable_and_balance_unavailable(system: System) -> None:
    me = alice(system)
    async with (
        system.client(me.write_key) as client,
        httpx.AsyncClient(base_url=system.settings.chain_url) as chain,
    ):
        assert (await chain.post("/admin/faults", json={"down": True})).status_code == 200
        try:
            refused_quote = await client.post("/otc-exchanges/quote", json=sell_body(me))
            refused_balance = await client.get(
                f"/otc-exchanges/wallets/{me.polygon_wallet}/balance"
            )
        finally:
            await chain.delete("/admin/faults")

    problem(refused_quote, 502, "QUOTE_UNAVAILABLE")
    problem(refused_balance, 502, "BALANCE_UNAVAILABLE")


async def test_another_customers_wallet_balance_is_wallet_not_found(system: System) -> None:
    async with system.client(bob(system).read_key) as client:
        response = await client.get(
            f"/otc-exchanges/wallets/{alice(system).polygon_wallet}/balance"
        )

    problem(response, 404, "WALLET_NOT_FOUND")


async def test_confirming_after_the_quote_lapsed_is_quote_expired(system: System) -> None:
    me = bob(system)
    async with system.client(me.write_key) as client:
        quoted = await quote(client, buy_body(me))
        await asyncio.sleep(QUOTE_TTL_SECONDS + 1)
        late = await confirm(client, quoted)
        expired = await system.wait_status(client, quoted["id"], "expired")
        requoted = await client.post(f"/otc-exchanges/{quoted['id']}/requote")

    problem(late, 400, "QUOTE_EXPIRED")
    assert expired["status"] == "expired"
    assert requoted.status_code == 200
    assert requoted.json()["status"] == "requoted"


async def test_cancel_before_confirmation_and_not_after(system: System) -> None:
    me = alice(system)
    async with system.client(me.write_key) as client:
        first = await quote(client, buy_body(me))
        cancelled = await client.post(f"/otc-exchanges/{first['id']}/cancel")
        second = await quote(client, buy_body(me))
        assert (await confirm(client, second)).status_code == 201
        refused = await client.post(f"/otc-exchanges/{second['id']}/cancel")

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    problem(refused, 409, "NOT_CANCELLABLE")


async def test_confirm_side_mismatch(system: System) -> None:
    me = alice(system)
    async with system.client(me.write_key) as client:
        quoted = await quote(client, buy_body(me))
        response = await client.post(
            "/otc-exchanges",
            json={"quoteId": quoted["id"], "side": "sell"},
            headers={"Idempotency-Key": new_key()},
        )

    problem(response, 422, "SIDE_MISMATCH")


async def test_malformed_input_is_validation_error_naming_the_field(system: System) -> None:
    me = alice(system)
    async with system.client(me.write_key) as client:
        bad_amount = await client.post(
            "/otc-exchanges/quote", json=buy_body(me, sourceAmount="12,5")
        )
        too_precise = await client.post(
            "/otc-exchanges/quote", json=buy_body(me, sourceAmount="10.001")
        )
        bad_limit = await client.get("/otc-exchanges", params={"limit": 101})

    assert problem(bad_amount, 422, "VALIDATION_ERROR")["field"] == "sourceAmount"
    assert problem(too_precise, 422, "VALIDATION_ERROR")["field"] == "sourceAmount"
    assert problem(bad_limit, 422, "VALIDATION_ERROR")["field"] == "limit"


# ------------------------------------------------------------------------------- auth and scopes


async def test_missing_or_bad_credentials_are_401(system: System) -> None:
    async with system.client() as anonymous, system.client("otc_nope_nope") as wrong:
        missing = await anonymous.get("/otc-exchanges")
        bad = await wrong.get("/otc-exchanges")
        expired_jwt = await anonymous.get(
            "/otc-exchanges", headers={"Authorization": "Bearer not.a.jwt"}
        )

    for response in (missing, bad, expired_jwt):
        problem(response, 401, "UNAUTHENTICATED")


def session_jwt(system: System, customer_id: str, scope: str, *, expires_in: int = 300) -> str:
    assert system.settings.jwt_secret is not None
    claims = {"sub": customer_id, "scope": scope, "exp": int(time.time()) + expires_in}
    return jwt.encode(claims, system.settings.jwt_secret.get_secret_value(), algorithm="HS256")


async def test_a_session_jwt_authenticates_with_its_scopes(system: System) -> None:
    me = alice(system)
    reader = session_jwt(system, me.id, "otc-exchanges:read")
    expired = session_jwt(system, me.id, "otc-exchanges:read", expires_in=-60)
    async with system.client(Authorization=f"Bearer {reader}") as client:
        accounts = await client.get("/otc-exchanges/accounts")
        write = await client.post("/otc-exchanges/quote", json=buy_body(me))
    async with system.client(Authorization=f"Bearer {expired}") as client:
        too_late = await client.get("/otc-exchanges/accounts")

    assert accounts.status_code == 200
    assert [a["id"] for a in accounts.json()["data"]] == [me.active_account]
    problem(write, 403, "INSUFFICIENT_SCOPE")
    problem(too_late, 401, "UNAUTHENTICATED")


async def test_insufficient_scope_is_403(system: System) -> None:
    me = alice(system)
    async with system.client(me.read_key) as reader, system.client(me.write_key) as writer:
        write_with_read_key = await reader.post("/otc-exchanges/quote", json=buy_body(me))
        ops_with_customer_key = await writer.get("/ops/otc-exchanges")

    problem(write_with_read_key, 403, "INSUFFICIENT_SCOPE")
    problem(ops_with_customer_key, 403, "INSUFFICIENT_SCOPE")


async def test_tenant_isolation_on_every_route(system: System) -> None:
    owner, other = alice(system), bob(system)
    async with system.client(owner.write_key) as mine, system.client(other.write_key) as theirs:
        quoted = await quote(mine, buy_body(owner))
        order = quoted["id"]
        responses = {
            "detail": await theirs.get(f"/otc-exchanges/{order}"),
            "cancel": await theirs.post(f"/otc-exchanges/{order}/cancel"),
            "requote": await theirs.post(f"/otc-exchanges/{order}/requote"),
            "confirm": await confirm(theirs, quoted),
        }
        their_orders = (await theirs.get("/otc-exchanges", params={"limit": 100})).json()["data"]
        their_accounts = (await theirs.get("/otc-exchanges/accounts")).json()["data"]
        their_wallets = (await theirs.get("/otc-exchanges/wallets")).json()["data"]
        foreign_quote = await theirs.post("/otc-exchanges/quote", json=buy_body(owner))
        still_mine = await mine.get(f"/otc-exchanges/{order}")

    for response in responses.values():
        problem(response, 404, "ORDER_NOT_FOUND")
    assert order not in [o["id"] for o in their_orders]
    assert owner.active_account not in [a["id"] for a in their_accounts]
    assert owner.ethereum_wallet not in [w["id"] for w in their_wallets]
    problem(foreign_quote, 422, "SOURCE_NOT_FOUND")
    assert still_mine.json()["status"] == "quoted"


# ------------------------------------------------------------------------------- idempotency


async def test_confirm_needs_a_uuid4_idempotency_key(system: System) -> None:
    me = alice(system)
    async with system.client(me.write_key) as client:
        quoted = await quote(client, buy_body(me))
        body = {"quoteId": quoted["id"], "side": "buy"}
        missing = await client.post("/otc-exchanges", json=body)
        malformed = await client.post(
            "/otc-exchanges", json=body, headers={"Idempotency-Key": "abc"}
        )
        not_v4 = await client.post(
            "/otc-exchanges", json=body, headers={"Idempotency-Key": str(uuid.uuid1())}
        )

    problem(missing, 400, "IDEMPOTENCY_KEY_REQUIRED")
    problem(malformed, 400, "IDEMPOTENCY_KEY_INVALID")
    problem(not_v4, 400, "IDEMPOTENCY_KEY_INVALID")


async def test_replay_with_the_same_key_and_refusal_with_another_body(system: System) -> None:
    me = alice(system)
    key = new_key()
    async with system.client(me.write_key) as client:
        quoted = await quote(client, buy_body(me))
        first = await confirm(client, quoted, key)
        again = await confirm(client, quoted, key)
        other_body = await client.post(
            "/otc-exchanges",
            json={"quoteId": quoted["id"], "side": "buy", "maxSlippageBps": 25},
            headers={"Idempotency-Key": key},
        )

    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    problem(other_body, 422, "IDEMPOTENCY_KEY_REUSED")


async def test_confirming_another_customers_quote_is_order_not_found(system: System) -> None:
    async with (
        system.client(alice(system).write_key) as mine,
        system.client(bob(system).write_key) as theirs,
    ):
        quoted = await quote(mine, buy_body(alice(system)))
        response = await confirm(theirs, quoted)

    problem(response, 404, "ORDER_NOT_FOUND")


# ------------------------------------------------------------------------------- lists


async def test_orders_are_listed_newest_first_with_pages(system: System) -> None:
    me = bob(system)
    async with system.client(me.write_key) as client:
        made = [(await quote(client, buy_body(me, f"{10 + i}.00")))["id"] for i in range(3)]
        total = (await client.get("/otc-exchanges", params={"limit": 1})).json()["total"]
        pages = [
            (await client.get("/otc-exchanges", params={"page": page, "limit": 2})).json()
            for page in (1, 2)
        ]

    newest_first = [o["id"] for o in pages[0]["data"]] + [o["id"] for o in pages[1]["data"]]
    assert newest_first[:3] == list(reversed(made))
    assert pages[0]["page"] == 1
    assert pages[0]["limit"] == 2
    assert pages[0]["total"] == total >= 3


# ------------------------------------------------------------------------------- last: the scan


async def test_zz_no_response_ever_showed_a_server_side_identifier(system: System) -> None:
    """Runs last in this module: every body the tests above received is scanned."""
    secrets = server_side_identifiers(system.settings)
    assert secrets, "the flows above should have made provider quotes, bank and chain transfers"
    leaked = [s for s in secrets for body in system.recorder.bodies if s in body]
    assert len(system.recorder.bodies) > 50
    assert leaked == []


async def test_ready_reports_each_dependency_and_every_lag(system: System) -> None:
    async with system.client() as client:
        response = await client.get("/ready")

    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    settings = system.settings
    groups = {settings.engine_group, settings.eur_worker_group, settings.chain_worker_group}
    assert set(body["checks"]) == {"database", "kafka", "relay", "projector", *groups}
    assert set(body["checks"].values()) == {"ok"}
    assert set(body["lags"]) == {"relay", "projector", *groups}
    assert all(isinstance(lag, int) and lag >= 0 for lag in body["lags"].values())
