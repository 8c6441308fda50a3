"""The operator console's sign-in, sessions and forms, in process on fakes: who may sign in,
what the cookie is, that every POST needs the session's CSRF token, that a revoked key or an
expired session signs the operator out, and that a decision is one command by the named
operator under the form's Idempotency-Key. The pages with real orders in a real browser:
tests/e2e/test_console_browser.py."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast
from uuid import UUID

import httpx
import pytest

from domain import commands as c
from domain.errors import ErrorCode
from domain.money import Currency
from domain.order import Side, Status
from domain.views import OrderView
from projections.order_list.view import OrderListRow
from services.adapters.fakes import FakeWalletBalances
from services.adapters.ports import Price, PricingPort, UpstreamUnavailableError
from services.auth.principal import OperatorIdentity, Principal, Scope
from services.command_client import Answered, CommandClient
from services.contracts import ErrorBody, ReplyEnvelope
from services.gateway.app import create_app, with_gateway
from services.gateway.console.pages import OrderLine, priced
from services.gateway.console.ports import ConsolePorts
from services.gateway.console.rates import LiveRates, Pair
from services.gateway.console.sessions import SESSION_COOKIE, SIGN_IN_COOKIE, Sessions
from services.gateway.ports import Gateway, OrderReadModel
from services.resources.fake import InMemoryResourceDirectory
from services.resources.port import PLATFORM_CUSTOMER_ID
from tests.unit.strategies import new_order

CUSTOMER = uuid.uuid4()
ORDER = uuid.uuid4()
ADA = OperatorIdentity(uuid.uuid4(), "Ada Lovelace")
OPERATOR_KEY = "otc_operator_key_for_tests"
CUSTOMER_KEY = "otc_customer_key_for_tests"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Keys:
    """The key store: one operator key (revocable) and one customer key."""

    def __init__(self) -> None:
        self.revoked: set[str] = set()

    async def api_key(self, key: str) -> Principal | None:
        if key in self.revoked:
            return None
        if key == OPERATOR_KEY:
            return Principal(
                PLATFORM_CUSTOMER_ID,
                frozenset({Scope.READ, Scope.WRITE, Scope.OPERATE}),
                "key-op",
                "api-key",
                operator=ADA,
            )
        if key == CUSTOMER_KEY:
            return Principal(CUSTOMER, frozenset({Scope.READ, Scope.WRITE}), "key-c", "api-key")
        return None

    def bearer(self, token: str) -> Principal | None:
        del token
        return None


class Orders:
    """The order list: one order of CUSTOMER's, no queue."""

    def __init__(self) -> None:
        order = new_order(Side.BUY, "120.00", "1.0800", "1.00", order_id=ORDER)
        self.row = OrderListRow(
            customer_id=CUSTOMER, view=OrderView.of(order), version=1, position=1
        )

    def get(self, order_id: UUID) -> OrderListRow | None:
        return self.row if order_id == ORDER else None

    def list_by_status(self, statuses: Any, *, page: int, limit: int) -> tuple[list[Any], int]:  # noqa: ANN401
        del statuses, page, limit
        return [], 0

    def max_tracking_id(self, application_name: str) -> int | None:
        del application_name
        return None


class Engine:
    """The command client: records each command and answers it as told."""

    def __init__(self) -> None:
        self.sent: list[c.Command] = []
        self.refuse: ErrorBody | None = None

    async def send_timed(self, command: c.Command, *, timeout: float) -> Answered:  # noqa: ASYNC109
        del timeout
        self.sent.append(command)
        if self.refuse is not None:
            reply = ReplyEnvelope(command_id=command.command_id, ok=False, error=self.refuse)
        else:
            reply = ReplyEnvelope(
                command_id=command.command_id, ok=True, order={"status": "payout_pending"}
            )
        return Answered(reply=reply, engine_timing=None, received_ms=time.time() * 1000)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def no_history(order_id: UUID) -> list[Any]:
    del order_id
    return []


@pytest.fixture
def keys() -> Keys:
    return Keys()


@pytest.fixture
def engine() -> Engine:
    return Engine()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def browser(keys: Keys, engine: Engine, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    gw = Gateway(
        resources=InMemoryResourceDirectory(),
        auth=keys,
        read_model=cast("OrderReadModel", Orders()),
        commands=cast("CommandClient", engine),
        balances=FakeWalletBalances(),
        history=no_history,
        console=ConsolePorts(sessions=Sessions(3600, clock=clock)),
    )
    app = create_app(lambda app: with_gateway(app, gw))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway") as client,
    ):
        yield client


async def sign_in(browser: httpx.AsyncClient, key: str) -> httpx.Response:
    form = await browser.get("/console/sign-in")
    [token] = CSRF.findall(form.text)
    return await browser.post("/console/sign-in", data={"csrf": token, "key": key})


async def session_csrf(browser: httpx.AsyncClient) -> str:
    page = await browser.get("/console/queue")
    assert page.status_code == 200
    [token] = set(CSRF.findall(page.text))
    return str(token)


async def test_a_page_without_a_session_sends_the_browser_to_sign_in(
    browser: httpx.AsyncClient,
) -> None:
    for path in ("/console/queue", "/console/attention", "/console/orders", "/console/system"):
        response = await browser.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/console/sign-in"


async def test_an_operator_key_gets_an_httponly_strict_session_cookie(
    browser: httpx.AsyncClient,
) -> None:
    response = await sign_in(browser, OPERATOR_KEY)

    assert response.status_code == 303
    assert response.headers["location"] == "/console/queue"
    [cookie] = [
        h for h in response.headers.get_list("set-cookie") if h.startswith(f"{SESSION_COOKIE}=")
    ]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Max-Age=3600" in cookie
    assert OPERATOR_KEY not in cookie
    page = await browser.get("/console/queue")
    assert page.status_code == 200
    assert "Ada Lovelace" in page.text
    assert OPERATOR_KEY not in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_a_customer_key_is_refused(browser: httpx.AsyncClient) -> None:
    response = await sign_in(browser, CUSTOMER_KEY)

    assert response.status_code == 403
    assert "customer keys cannot sign in" in response.text
    assert ErrorCode.INSUFFICIENT_SCOPE in response.text
    assert SESSION_COOKIE not in browser.cookies
    assert (await browser.get("/console/queue")).status_code == 303


async def test_an_unknown_key_is_refused(browser: httpx.AsyncClient) -> None:
    response = await sign_in(browser, "otc_not_a_key")

    assert response.status_code == 401
    assert ErrorCode.UNAUTHENTICATED in response.text
    assert SESSION_COOKIE not in browser.cookies


async def test_a_sign_in_without_its_form_token_is_refused(browser: httpx.AsyncClient) -> None:
    await browser.get("/console/sign-in")
    response = await browser.post("/console/sign-in", data={"csrf": "forged", "key": OPERATOR_KEY})
    assert response.status_code == 403
    browser.cookies.delete(SIGN_IN_COOKIE)
    response = await browser.post("/console/sign-in", data={"key": OPERATOR_KEY})
    assert response.status_code == 403
    assert SESSION_COOKIE not in browser.cookies


async def test_a_decision_without_the_csrf_token_is_refused_and_sends_nothing(
    browser: httpx.AsyncClient, engine: Engine
) -> None:
    await sign_in(browser, OPERATOR_KEY)

    missing = await browser.post(f"/console/orders/{ORDER}/approve", data={"rateChoice": "live"})
    forged = await browser.post(
        f"/console/orders/{ORDER}/reject", data={"csrf": "x" * 43, "reason": "no"}
    )

    for refused in (missing, forged):
        assert refused.status_code == 403
        assert "CSRF_TOKEN_INVALID" in refused.text
    assert engine.sent == []


async def test_an_approval_is_one_command_by_the_named_operator_under_the_forms_key(
    browser: httpx.AsyncClient, engine: Engine
) -> None:
    await sign_in(browser, OPERATOR_KEY)
    confirm = await browser.get(f"/console/orders/{ORDER}/approve")
    [csrf] = set(CSRF.findall(confirm.text))
    [key] = re.findall(r'name="idempotencyKey" value="([^"]+)"', confirm.text)
    form = {"csrf": csrf, "idempotencyKey": key, "rateChoice": "live"}

    done = await browser.post(f"/console/orders/{ORDER}/approve", data=form)

    assert done.status_code == 200
    assert "payout_pending" in done.text
    [command] = engine.sent
    assert isinstance(command, c.ApproveOrder)
    assert command.order_id == ORDER
    assert command.customer_id == CUSTOMER
    assert command.actor.id == str(ADA.id)
    assert command.actor.name == "Ada Lovelace"
    assert command.idempotency_key == UUID(key)
    assert command.rate is None


async def test_an_explicit_rate_needs_a_reason_and_is_sent_with_it(
    browser: httpx.AsyncClient, engine: Engine
) -> None:
    await sign_in(browser, OPERATOR_KEY)
    csrf = await session_csrf(browser)
    path = f"/console/orders/{ORDER}/approve"

    unexplained = await browser.post(
        path, data={"csrf": csrf, "rateChoice": "explicit", "rate": "1.0800"}
    )
    explained = await browser.post(
        path,
        data={"csrf": csrf, "rateChoice": "explicit", "rate": "1.0800", "reason": "desk rate"},
    )

    assert unexplained.status_code == 422
    assert "needs the rate and a reason" in unexplained.text
    assert explained.status_code == 200
    [command] = engine.sent
    assert isinstance(command, c.ApproveOrder)
    assert command.rate == Decimal("1.0800")
    assert command.reason == "desk rate"


async def test_a_refusal_is_shown_in_words_with_its_code(
    browser: httpx.AsyncClient, engine: Engine
) -> None:
    await sign_in(browser, OPERATOR_KEY)
    csrf = await session_csrf(browser)
    engine.refuse = ErrorBody(
        status=422, code=ErrorCode.RATE_OUTSIDE_COLLAR, message="live rate 1.08: allowed <b>"
    )

    refused = await browser.post(
        f"/console/orders/{ORDER}/reject", data={"csrf": csrf, "reason": "<script>x</script>"}
    )

    assert refused.status_code == 422
    assert "RATE_OUTSIDE_COLLAR" in refused.text
    assert "allowed &lt;b&gt;" in refused.text  # escaped, never markup
    [command] = engine.sent
    assert isinstance(command, c.RejectOrder)
    assert command.reason == "<script>x</script>"


async def test_an_unknown_order_is_said_and_sends_nothing(
    browser: httpx.AsyncClient, engine: Engine
) -> None:
    await sign_in(browser, OPERATOR_KEY)
    csrf = await session_csrf(browser)

    response = await browser.post(
        f"/console/orders/{uuid.uuid4()}/reject", data={"csrf": csrf, "reason": "no"}
    )

    assert response.status_code == 404
    assert "ORDER_NOT_FOUND" in response.text
    assert engine.sent == []


async def test_a_revoked_key_signs_the_operator_out(browser: httpx.AsyncClient, keys: Keys) -> None:
    await sign_in(browser, OPERATOR_KEY)
    assert (await browser.get("/console/queue")).status_code == 200

    keys.revoked.add(OPERATOR_KEY)

    assert (await browser.get("/console/queue")).status_code == 303
    keys.revoked.clear()
    assert (await browser.get("/console/queue")).status_code == 303  # the session is gone


async def test_a_session_expires(browser: httpx.AsyncClient, clock: Clock) -> None:
    await sign_in(browser, OPERATOR_KEY)
    clock.now += 3599
    assert (await browser.get("/console/queue")).status_code == 200
    clock.now += 2
    assert (await browser.get("/console/queue")).status_code == 303


async def test_signing_out_ends_the_session_for_its_cookie(browser: httpx.AsyncClient) -> None:
    await sign_in(browser, OPERATOR_KEY)
    token = browser.cookies[SESSION_COOKIE]
    csrf = await session_csrf(browser)

    without = await browser.post("/console/sign-out", data={})
    assert without.status_code == 403
    out = await browser.post("/console/sign-out", data={"csrf": csrf})

    assert out.status_code == 303
    browser.cookies.set(SESSION_COOKIE, token, path="/console")
    assert (await browser.get("/console/queue")).status_code == 303


def test_the_live_rate_is_shown_against_the_indicative_one_with_the_collar() -> None:
    view = SimpleNamespace(
        indicative_rate=Decimal("1.0800"),
        rate=Decimal("1.0800"),
        side=Side.BUY,
        status=Status.PENDING_APPROVAL,
    )
    line = OrderLine(view=view, customer_id=CUSTOMER, facts={}, waiting="1 s")  # type: ignore[arg-type]

    better = priced(line, Decimal("1.0854"), 200)
    worse = priced(line, Decimal("1.0746"), 200)

    assert better.difference_bps == Decimal("50.0")
    assert worse.difference_bps == Decimal("-50.0")
    assert better.collar == (Decimal("1.06369200"), Decimal("1.10710800"))
    assert priced(line, None, 200).live_rate is None


class Provider(PricingPort):
    """A provider that counts its calls and can be made to fail."""

    def __init__(self) -> None:
        self.calls = 0
        self.down = False

    async def price(
        self,
        *,
        source_currency: Currency,
        destination_currency: Currency,
        source_amount: Decimal,
        idempotency_key: UUID,
    ) -> Price:
        del source_currency, destination_currency, source_amount, idempotency_key
        self.calls += 1
        await asyncio.sleep(0.01)
        if self.down:
            raise UpstreamUnavailableError("provider: down")
        return Price(
            rate=Decimal("1.0800"), fee=Decimal("1.00"), provider_quote_id=None, valid_until=None
        )


async def test_pages_asking_at_once_share_one_provider_call_kept_a_few_seconds(
    clock: Clock,
) -> None:
    provider = Provider()
    rates = LiveRates(provider, kept_seconds=4, clock=clock)
    pair = Pair(Currency.EUR, Currency.USDC, Decimal("100.00"))

    first = await asyncio.gather(rates.rate(pair), rates.rate(pair), rates.rates([pair, pair]))
    clock.now += 3.9
    kept = await rates.rate(pair)
    clock.now += 0.2
    provider.down = True
    unavailable = await rates.rate(pair)

    assert list(first) == [Decimal("1.0800"), Decimal("1.0800"), [Decimal("1.0800")] * 2]
    assert kept == Decimal("1.0800")
    assert unavailable is None
    assert provider.calls == 2
