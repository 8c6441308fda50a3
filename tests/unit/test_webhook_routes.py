"""The /webhook-endpoints routes in process, on the in-memory store and a fake DNS: scopes,
tenant isolation, the secret shown once, the SSRF guard's refusals, idempotent registration."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import httpx
import pytest

from services.auth.principal import Principal, Scope
from services.gateway.app import create_app
from services.gateway.ports import Gateway
from services.webhooks.endpoints import WebhookEndpoints
from services.webhooks.fake import InMemoryWebhookStore
from services.webhooks.signing import SecretBox, new_box_key
from services.webhooks.ssrf import UrlGuard

PUBLIC_URL = "https://hooks.example.com/otc"
DNS = {
    "hooks.example.com": ["93.184.215.14"],
    "internal.example.com": ["10.20.30.40"],
    "localhost": ["127.0.0.1"],
}


async def fake_dns(host: str, port: int) -> list[str]:  # noqa: ARG001 - the resolver's signature
    if host in DNS:
        return DNS[host]
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        raise OSError(host) from None


class Keys:
    """API keys of two customers: read+write and read-only."""

    def __init__(self) -> None:
        self.alice, self.bob = uuid.uuid4(), uuid.uuid4()
        self.principals = {
            "alice": Principal(self.alice, frozenset({Scope.READ, Scope.WRITE}), "a", "api-key"),
            "alice-read": Principal(self.alice, frozenset({Scope.READ}), "ar", "api-key"),
            "bob": Principal(self.bob, frozenset({Scope.READ, Scope.WRITE}), "b", "api-key"),
        }

    async def api_key(self, key: str) -> Principal | None:
        return self.principals.get(key)

    def bearer(self, token: str) -> Principal | None:  # noqa: ARG002 - no JWTs here
        return None


@dataclass
class Api:
    store: InMemoryWebhookStore
    client: httpx.AsyncClient

    async def create(self, key: str = "alice", **body: object) -> httpx.Response:
        return await self.client.post(
            "/webhook-endpoints", json={"url": PUBLIC_URL, **body}, headers={"x-api-key": key}
        )

    def as_(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}


async def open_api(*, allow_loopback: bool = False, box: bool = True) -> AsyncIterator[Api]:
    app = create_app()
    store = InMemoryWebhookStore()
    app.state.gateway = Gateway(
        resources=cast("Any", None),
        auth=Keys(),
        read_model=cast("Any", None),
        commands=cast("Any", None),
        balances=cast("Any", None),
        history=cast("Any", None),
    )
    app.state.webhooks = WebhookEndpoints(
        store=store,
        guard=UrlGuard(allow_loopback=allow_loopback, resolve=fake_dns),
        box=SecretBox(new_box_key()) if box else None,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield Api(store, client)


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async for opened in open_api():
        yield opened


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


async def test_registering_answers_the_endpoint_and_its_secret_once(api: Api) -> None:
    created = await api.create(eventTypes=["order.paid_out"], description="ledger sync")

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert created.headers["location"] == f"/webhook-endpoints/{body['id']}"
    assert (body["url"], body["eventTypes"], body["enabled"]) == (
        PUBLIC_URL,
        ["order.paid_out"],
        True,
    )
    shown = await api.client.get(f"/webhook-endpoints/{body['id']}", headers=api.as_("alice"))
    listed = await api.client.get("/webhook-endpoints", headers=api.as_("alice"))
    for later in (shown, listed):
        assert later.status_code == 200
        assert body["secret"] not in later.text
        assert "secret" not in later.text
    assert listed.json()["total"] == 1
    [sealed] = [s.sealed for s in api.store.secrets[uuid.UUID(body["id"])]]
    assert body["secret"].encode() not in sealed


async def test_reading_needs_the_read_scope_and_changing_the_write_scope(api: Api) -> None:
    assert (
        await api.client.get("/webhook-endpoints", headers=api.as_("alice-read"))
    ).status_code == 200
    problem(await api.create("alice-read"), 403, "INSUFFICIENT_SCOPE")
    problem(await api.client.get("/webhook-endpoints"), 401, "UNAUTHENTICATED")


async def test_another_customer_s_endpoint_is_not_found_for_every_route(api: Api) -> None:
    bobs = (await api.create("bob")).json()["id"]
    base = f"/webhook-endpoints/{bobs}"
    alice = api.as_("alice")

    calls = [
        api.client.get(base, headers=alice),
        api.client.patch(base, json={"enabled": False}, headers=alice),
        api.client.delete(base, headers=alice),
        api.client.post(f"{base}/rotate-secret", headers=alice),
        api.client.post(f"{base}/test", headers=alice),
        api.client.get(f"{base}/deliveries", headers=alice),
        api.client.post(f"{base}/replay", json={"since": "2026-01-01T00:00:00Z"}, headers=alice),
    ]
    for call in calls:
        problem(await call, 404, "WEBHOOK_ENDPOINT_NOT_FOUND")
    mine = await api.client.get("/webhook-endpoints", headers=alice)
    assert mine.json()["data"] == []
    still = await api.client.get(base, headers=api.as_("bob"))
    assert still.json()["enabled"] is True


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://internal.example.com/hook",
        "http://127.0.0.1:8610/hook",
        "https://localhost/hook",
        "http://hooks.example.com/hook",
        "https://user:secret@hooks.example.com/hook",
        "https://nowhere.example.com/hook",
    ],
)
async def test_urls_the_ssrf_guard_refuses_are_422(api: Api, url: str) -> None:
    body = problem(await api.create(url=url), 422, "WEBHOOK_URL_NOT_ALLOWED")

    assert body["field"] == "url"
    assert api.store.endpoints_by_id == {}


async def test_a_description_with_a_nul_character_is_422_on_create_and_change(api: Api) -> None:
    created = (await api.create()).json()
    changed = await api.client.patch(
        f"/webhook-endpoints/{created['id']}",
        json={"description": "a\x00b"},
        headers=api.as_("alice"),
    )

    assert problem(await api.create(description="a\x00b"), 422, "VALIDATION_ERROR")["field"] == (
        "description"
    )
    assert problem(changed, 422, "VALIDATION_ERROR")["field"] == "description"


async def test_a_loopback_receiver_is_accepted_where_the_setting_allows_it() -> None:
    async for api in open_api(allow_loopback=True):
        created = await api.create(url="http://127.0.0.1:8610/hook")
        assert created.status_code == 201, created.text
        problem(await api.create(url="https://10.0.0.1/hook"), 422, "WEBHOOK_URL_NOT_ALLOWED")


async def test_a_changed_url_is_checked_again(api: Api) -> None:
    made = (await api.create()).json()

    changed = await api.client.patch(
        f"/webhook-endpoints/{made['id']}",
        json={"url": "https://internal.example.com/x"},
        headers=api.as_("alice"),
    )

    problem(changed, 422, "WEBHOOK_URL_NOT_ALLOWED")


async def test_an_unknown_event_type_is_a_validation_error_naming_the_field(api: Api) -> None:
    body = problem(await api.create(eventTypes=["order.completed"]), 422, "VALIDATION_ERROR")

    assert body["field"] == "eventTypes"
    assert "order.paid_out" in body["detail"]


async def test_the_same_idempotency_key_registers_once_and_replays_the_answer(api: Api) -> None:
    key = str(uuid.uuid4())
    headers = {**api.as_("alice"), "Idempotency-Key": key}
    first = await api.client.post("/webhook-endpoints", json={"url": PUBLIC_URL}, headers=headers)
    again = await api.client.post("/webhook-endpoints", json={"url": PUBLIC_URL}, headers=headers)
    other = await api.client.post(
        "/webhook-endpoints", json={"url": PUBLIC_URL, "description": "x"}, headers=headers
    )

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    problem(other, 422, "IDEMPOTENCY_KEY_REUSED")
    assert len(api.store.endpoints_by_id) == 1


async def test_disabling_pauses_and_a_test_event_needs_it_enabled(api: Api) -> None:
    made = (await api.create()).json()
    base = f"/webhook-endpoints/{made['id']}"

    paused = await api.client.patch(base, json={"enabled": False}, headers=api.as_("alice"))
    refused = await api.client.post(f"{base}/test", headers=api.as_("alice"))
    resumed = await api.client.patch(base, json={"enabled": True}, headers=api.as_("alice"))
    tested = await api.client.post(f"{base}/test", headers=api.as_("alice"))
    deliveries = await api.client.get(f"{base}/deliveries", headers=api.as_("alice"))

    assert (paused.json()["enabled"], paused.json()["disabledReason"]) == (
        False,
        "disabled by the customer",
    )
    problem(refused, 409, "WEBHOOK_ENDPOINT_DISABLED")
    assert resumed.json()["disabledReason"] is None
    assert tested.status_code == 202
    assert tested.json()["eventType"] == "webhook.test"
    assert tested.json()["webhookId"].startswith("msg_")
    assert [d["webhookId"] for d in deliveries.json()["data"]] == [tested.json()["webhookId"]]


async def test_rotating_answers_the_new_secret_and_when_the_old_one_stops(api: Api) -> None:
    made = (await api.create()).json()

    rotated = await api.client.post(
        f"/webhook-endpoints/{made['id']}/rotate-secret", headers=api.as_("alice")
    )

    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != made["secret"]
    assert rotated.json()["previousSecretsExpireAt"]


async def test_a_replay_window_must_end_after_it_starts(api: Api) -> None:
    made = (await api.create()).json()
    base = f"/webhook-endpoints/{made['id']}/replay"

    backwards = await api.client.post(
        base,
        json={"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        headers=api.as_("alice"),
    )
    naive = await api.client.post(
        base, json={"since": "2026-02-01T00:00:00"}, headers=api.as_("alice")
    )
    queued = await api.client.post(
        base, json={"since": "2026-02-01T00:00:00Z"}, headers=api.as_("alice")
    )

    problem(backwards, 422, "VALIDATION_ERROR")
    problem(naive, 422, "VALIDATION_ERROR")
    assert (queued.status_code, queued.json()) == (202, {"queued": 0})


async def test_deleting_an_endpoint_makes_it_not_found(api: Api) -> None:
    made = (await api.create()).json()
    base = f"/webhook-endpoints/{made['id']}"

    deleted = await api.client.delete(base, headers=api.as_("alice"))

    assert deleted.status_code == 204
    problem(await api.client.get(base, headers=api.as_("alice")), 404, "WEBHOOK_ENDPOINT_NOT_FOUND")


async def test_without_a_sealing_key_registering_is_unavailable_with_retry_after() -> None:
    async for api in open_api(box=False):
        refused = problem(await api.create(), 503, "WEBHOOKS_UNAVAILABLE")
        assert refused["status"] == 503
        assert (await api.create()).headers["Retry-After"] == "60"
