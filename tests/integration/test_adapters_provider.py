"""`HttpProviderPricing` over real HTTP against the provider sandbox: prices, retries through
failures, duplicate-key resolution, permanent refusals."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import psycopg
import pytest
from pydantic import SecretStr

from domain.money import Currency, convert
from services.adapters.http import RetryPolicy, upstream_client
from services.adapters.ports import Price, UpstreamRejectedError, UpstreamUnavailableError
from services.adapters.provider import HttpProviderPricing
from services.local.sandbox.provider import create_app
from services.settings import Settings
from tests.integration.sandboxes import (
    FAST_RETRY,
    PROVIDER_SCOPE,
    over_http,
    register_token,
    set_faults,
)

pytestmark = pytest.mark.integration

TOKEN = "adapter-test-token-0123456789"


@dataclass
class Provider:
    url: str
    admin: httpx.AsyncClient
    settings: Settings
    clients: list[httpx.AsyncClient]

    def pricing(
        self,
        *,
        token: str | None = TOKEN,
        retry: RetryPolicy = FAST_RETRY,
        timeout: float | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> HttpProviderPricing:
        client = upstream_client(
            self.url,
            timeout_seconds=timeout or self.settings.upstream_timeout_seconds,
            bearer_token=None if token is None else SecretStr(token),
        )
        self.clients.append(client)
        if clock is None:
            return HttpProviderPricing(client, retry=retry)
        return HttpProviderPricing(client, retry=retry, clock=clock)

    async def quote(self, quote_id: str) -> dict[str, dict[str, str]]:
        response = await self.admin.get(
            f"/currency-exchange-quotes/{quote_id}", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code == 200, response.text
        body: dict[str, dict[str, str]] = response.json()
        return body

    def stored_quotes(self) -> int:
        with psycopg.connect(self.settings.conninfo()) as conn:
            row = conn.execute("SELECT count(*) FROM sandbox_provider.quotes").fetchone()
        assert row is not None
        count: int = row[0]
        return count


@pytest.fixture
async def provider(settings: Settings) -> AsyncIterator[Provider]:
    async with over_http(create_app(settings)) as (url, admin):
        await register_token(admin, TOKEN, PROVIDER_SCOPE)
        provider = Provider(url, admin, settings, [])
        yield provider
        for client in provider.clients:
            await client.aclose()


async def buy_price(
    pricing: HttpProviderPricing, amount: str, key: uuid.UUID | None = None
) -> Price:
    return await pricing.price(
        source_currency=Currency.EUR,
        destination_currency=Currency.USDC,
        source_amount=Decimal(amount),
        idempotency_key=key or uuid.uuid4(),
    )


async def test_buy_price_is_the_providers_inclusive_quote(provider: Provider) -> None:
    price = await buy_price(provider.pricing(), "1000.00")

    assert price.provider_quote_id is not None
    quote = await provider.quote(price.provider_quote_id)
    assert price.rate == Decimal(quote["conversionRate"]["amount"])
    assert price.fee == Decimal(quote["fee"]["amount"]) == Decimal("1.00")
    assert Decimal(quote["source"]["amount"]) + price.fee == Decimal("1000.00")
    destination = convert(Decimal("1000.00"), price.fee, price.rate, Currency.USDC)
    assert destination == Decimal(quote["target"]["amount"])
    assert price.valid_until is not None
    assert price.valid_until > datetime.now(UTC)


async def test_sell_price_has_its_fee_in_usdc(provider: Provider) -> None:
    price = await provider.pricing().price(
        source_currency=Currency.USDC,
        destination_currency=Currency.EUR,
        source_amount=Decimal("250.000000"),
        idempotency_key=uuid.uuid4(),
    )

    assert Decimal("0.85") < price.rate < Decimal("0.97")
    assert price.fee == Decimal("0.249751")  # 250 - floor(250 / 1.001, 6)


async def test_a_retried_key_resolves_the_duplicate_to_the_original_quote(
    provider: Provider,
) -> None:
    key = uuid.uuid4()
    earlier_try = await provider.admin.post(
        "/currency-exchange-quotes",
        json={
            "sell": "EUR",
            "buy": "USDC",
            "amount": {"amount": "500.00", "currency": "EUR", "feePolicy": "INCLUSIVE"},
        },
        headers={"Authorization": f"Bearer {TOKEN}", "idempotency-key": str(key)},
    )

    price = await buy_price(provider.pricing(), "500.00", key)

    assert price.provider_quote_id == earlier_try.json()["id"]
    assert price.rate == Decimal(earlier_try.json()["conversionRate"]["amount"])
    assert provider.stored_quotes() == 1


async def test_a_duplicate_for_another_amount_is_refused(provider: Provider) -> None:
    key = uuid.uuid4()
    await buy_price(provider.pricing(), "500.00", key)

    with pytest.raises(UpstreamRejectedError) as refused:
        await buy_price(provider.pricing(), "600.00", key)

    assert refused.value.code == "PROVIDER_QUOTE_MISMATCH"


async def test_an_original_quote_past_valid_until_is_refused(provider: Provider) -> None:
    key = uuid.uuid4()
    await buy_price(provider.pricing(), "500.00", key)
    later = provider.pricing(clock=lambda: datetime.now(UTC) + timedelta(minutes=5))

    with pytest.raises(UpstreamRejectedError) as refused:
        await buy_price(later, "500.00", key)

    assert refused.value.code == "PROVIDER_QUOTE_EXPIRED"


async def test_prices_come_through_a_30_percent_fail_rate(provider: Provider) -> None:
    await set_faults(provider.admin, failRate=0.3, seed=1)
    pricing = provider.pricing()

    prices = [await buy_price(pricing, "100.00") for _ in range(10)]

    assert len({p.provider_quote_id for p in prices}) == 10
    assert provider.stored_quotes() == 10


async def test_lost_responses_never_create_a_second_quote(provider: Provider) -> None:
    await set_faults(provider.admin, failAfterCommitRate=0.3, seed=2)
    pricing = provider.pricing()

    prices = [await buy_price(pricing, "100.00") for _ in range(10)]

    assert len({p.provider_quote_id for p in prices}) == 10
    assert provider.stored_quotes() == 10


@pytest.mark.parametrize(
    ("token", "code"),
    [(None, "UNAUTHENTICATED"), ("quotes-read-only-0123456789", "INSUFFICIENT_SCOPE")],
)
async def test_auth_refusals_surface_as_permanent(
    provider: Provider, token: str | None, code: str
) -> None:
    await register_token(provider.admin, "quotes-read-only-0123456789", "other.scope")

    with pytest.raises(UpstreamRejectedError) as refused:
        await buy_price(provider.pricing(token=token), "100.00")

    assert refused.value.code == code
    assert not isinstance(refused.value, UpstreamUnavailableError)


async def test_an_outage_is_unavailable_after_bounded_retries(provider: Provider) -> None:
    await set_faults(provider.admin, down=True)

    started = time.monotonic()
    with pytest.raises(UpstreamUnavailableError, match="8 tries"):
        await buy_price(provider.pricing(), "100.00")

    assert time.monotonic() - started < 2


async def test_a_slow_provider_times_out_as_unavailable(provider: Provider) -> None:
    await set_faults(provider.admin, latencyMs=400)
    pricing = provider.pricing(timeout=0.05, retry=RetryPolicy(max_attempts=2))

    with pytest.raises(UpstreamUnavailableError, match="timeout"):
        await buy_price(pricing, "100.00")
