"""The liquidity provider sandbox against seed 004 ("Create currency exchange quote"): every field,
both fee policies, the amount in either currency, idempotency-key, the scope, validUntil."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import httpx
import psycopg
import pytest

from services.local.sandbox.pricing import DEFAULT_CURRENCIES
from services.local.sandbox.provider import create_app
from services.local.sandbox.provider_quotes import ProviderConfig
from services.settings import Settings
from tests.integration.sandboxes import (
    EXECUTE_SCOPE,
    PROVIDER_SCOPE,
    FakeClock,
    in_process,
    register_token,
)

pytestmark = pytest.mark.integration

TOKEN = "provider-test-token-0123456789"
FEE = Decimal("0.001")  # the default 10 bps
QUOTES = "/currency-exchange-quotes"
SEED_CURRENCIES = {"EUR", "USD", "USDC", "USDT", "BTC"}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@dataclass
class Provider:
    client: httpx.AsyncClient
    clock: FakeClock

    async def quote(self, body: dict[str, Any], key: uuid.UUID | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if key is not None:
            headers["idempotency-key"] = str(key)
        return await self.client.post(QUOTES, json=body, headers=headers)

    async def ok_quote(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.quote(body)
        assert response.status_code == 200, response.text
        quote: dict[str, Any] = response.json()
        return quote

    async def read(self, quote_id: str) -> httpx.Response:
        return await self.client.get(f"{QUOTES}/{quote_id}", headers=self._auth())

    async def execute(self, quote_id: str) -> httpx.Response:
        return await self.client.post(f"{QUOTES}/{quote_id}/execute", headers=self._auth())

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def provider(settings: Settings) -> AsyncIterator[Provider]:
    clock = FakeClock()
    app = create_app(settings, ProviderConfig(clock=clock, quote_ttl_seconds=30))
    async with in_process(app) as client:
        await register_token(client, TOKEN, PROVIDER_SCOPE, EXECUTE_SCOPE)
        yield Provider(client, clock)


def eur_to_usdc(
    amount: str, fee_policy: str | None = None, currency: str = "EUR"
) -> dict[str, Any]:
    given: dict[str, str] = {"amount": amount, "currency": currency}
    if fee_policy is not None:
        given["feePolicy"] = fee_policy
    return {"sell": "EUR", "buy": "USDC", "amount": given}


def amount_of(part: dict[str, str]) -> Decimal:
    return Decimal(part["amount"])


def places(text: str) -> int:
    return len(text.partition(".")[2])


async def test_quote_carries_every_field_of_seed_004(provider: Provider) -> None:
    quote = await provider.ok_quote(eur_to_usdc("1000.00"))

    assert set(quote) == {
        "id",
        "created",
        "validUntil",
        "source",
        "target",
        "fee",
        "conversionRate",
        "state",
    }
    assert uuid.UUID(quote["id"]).version == 4
    assert ISO_UTC.match(quote["created"])
    assert ISO_UTC.match(quote["validUntil"])
    created = datetime.fromisoformat(quote["created"])
    assert created == provider.clock.now
    assert datetime.fromisoformat(quote["validUntil"]) - created == timedelta(seconds=30)
    assert quote["source"] == {"amount": "1000.00", "currency": "EUR"}
    assert set(quote["target"]) == {"amount", "currency"}
    assert quote["target"]["currency"] == "USDC"
    assert quote["fee"]["currency"] == "EUR"
    assert set(quote["conversionRate"]) == {"amount", "sourceCurrency", "targetCurrency"}
    assert quote["conversionRate"]["sourceCurrency"] == "EUR"
    assert quote["conversionRate"]["targetCurrency"] == "USDC"
    assert Decimal("1.05") < amount_of(quote["conversionRate"]) < Decimal("1.11")
    assert quote["state"] == "NEW"


async def test_amounts_are_decimal_strings_with_each_currencys_places(provider: Provider) -> None:
    quote = await provider.ok_quote(eur_to_usdc("250.5"))
    btc = await provider.ok_quote(
        {"sell": "USDT", "buy": "BTC", "amount": {"amount": "5000", "currency": "USDT"}},
    )

    assert quote["source"]["amount"] == "250.50"
    assert places(quote["fee"]["amount"]) == 2
    assert places(quote["target"]["amount"]) == 6
    assert places(btc["source"]["amount"]) == 6
    assert places(btc["target"]["amount"]) == 8


async def test_fee_policy_defaults_to_exclusive_fee_on_top_of_the_amount(
    provider: Provider,
) -> None:
    quote = await provider.ok_quote(eur_to_usdc("1000.00"))
    rate = amount_of(quote["conversionRate"])

    assert amount_of(quote["source"]) == Decimal("1000.00")
    assert amount_of(quote["fee"]) == Decimal("1.00")
    assert amount_of(quote["target"]) == (Decimal("1000.00") * rate).quantize(
        Decimal("0.000001"), rounding=ROUND_FLOOR
    )


async def test_explicit_exclusive_fee_is_rounded_up_in_the_providers_favour(
    provider: Provider,
) -> None:
    quote = await provider.ok_quote(eur_to_usdc("123.45", "EXCLUSIVE"))

    assert amount_of(quote["source"]) == Decimal("123.45")
    assert amount_of(quote["fee"]) == Decimal("0.13")  # 0.12345 rounded up


async def test_inclusive_fee_comes_out_of_the_amount(provider: Provider) -> None:
    quote = await provider.ok_quote(eur_to_usdc("1000.00", "INCLUSIVE"))
    source, fee, rate = (amount_of(quote[k]) for k in ("source", "fee", "conversionRate"))

    assert source + fee == Decimal("1000.00")
    assert (source, fee) == (Decimal("999.00"), Decimal("1.00"))
    assert amount_of(quote["target"]) == (source * rate).quantize(
        Decimal("0.000001"), rounding=ROUND_FLOOR
    )


async def test_amount_in_the_buy_currency_is_the_amount_bought(provider: Provider) -> None:
    quote = await provider.ok_quote(eur_to_usdc("500.000000", currency="USDC"))
    source, fee, rate = (amount_of(quote[k]) for k in ("source", "fee", "conversionRate"))

    assert quote["target"] == {"amount": "500.000000", "currency": "USDC"}
    assert quote["source"]["currency"] == "EUR"
    assert source == (Decimal(500) / rate).quantize(Decimal("0.01"), rounding=ROUND_CEILING)
    assert fee == (source * FEE).quantize(Decimal("0.01"), rounding=ROUND_CEILING)


async def test_inclusive_amount_in_the_buy_currency_includes_the_fee(provider: Provider) -> None:
    quote = await provider.ok_quote(eur_to_usdc("500.000000", "INCLUSIVE", currency="USDC"))
    source, fee, rate = (amount_of(quote[k]) for k in ("source", "fee", "conversionRate"))

    assert source + fee == (Decimal(500) / rate).quantize(Decimal("0.01"), rounding=ROUND_CEILING)
    assert fee > 0
    assert amount_of(quote["target"]) < Decimal(500)


@pytest.mark.parametrize("sell", sorted(SEED_CURRENCIES))
async def test_every_seed_currency_can_be_sold(provider: Provider, sell: str) -> None:
    buy = "USDC" if sell != "USDC" else "EUR"
    quote = await provider.ok_quote(
        {"sell": sell, "buy": buy, "amount": {"amount": "1", "currency": sell}},
    )

    assert (quote["source"]["currency"], quote["target"]["currency"]) == (sell, buy)
    assert amount_of(quote["target"]) > 0


async def test_json_numbers_are_read_as_exact_decimals(provider: Provider) -> None:
    quote = await provider.ok_quote(
        {"sell": "EUR", "buy": "USDC", "amount": {"amount": 0.1, "currency": "EUR"}},
    )

    assert quote["source"]["amount"] == "0.10"


async def test_the_mid_price_moves_so_consecutive_quotes_differ(provider: Provider) -> None:
    rates = {
        (await provider.ok_quote(eur_to_usdc("100.00")))["conversionRate"]["amount"]
        for _ in range(5)
    }

    assert len(rates) > 1


async def test_same_idempotency_key_is_a_duplicate_naming_the_original_quote(
    provider: Provider,
) -> None:
    key = uuid.uuid4()
    first = await provider.quote(eur_to_usdc("1000.00"), key)
    again = await provider.quote(eur_to_usdc("1000.00"), key)
    other_body = await provider.quote(eur_to_usdc("5.00", "INCLUSIVE"), key)

    assert first.status_code == 200
    for duplicate in (again, other_body):
        assert duplicate.status_code == 409
        assert duplicate.json()["code"] == "DUPLICATE_CURRENCY_EXCHANGE_QUOTE"
        assert duplicate.json()["currencyExchangeQuoteId"] == first.json()["id"]


async def test_original_quote_can_be_read_by_the_id_a_duplicate_names(provider: Provider) -> None:
    key = uuid.uuid4()
    first = await provider.quote(eur_to_usdc("42.00"), key)
    duplicate = await provider.quote(eur_to_usdc("42.00"), key)

    original = await provider.read(duplicate.json()["currencyExchangeQuoteId"])

    assert original.status_code == 200
    assert original.json() == first.json()


async def test_different_idempotency_keys_create_different_quotes(provider: Provider) -> None:
    first = await provider.quote(eur_to_usdc("10.00"), uuid.uuid4())
    second = await provider.quote(eur_to_usdc("10.00"), uuid.uuid4())

    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["id"] != second.json()["id"]


async def test_idempotency_key_must_be_a_uuid(provider: Provider) -> None:
    response = await provider.client.post(
        QUOTES,
        json=eur_to_usdc("10.00"),
        headers={"Authorization": f"Bearer {TOKEN}", "idempotency-key": "not-a-uuid"},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_IDEMPOTENCY_KEY"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer unknown-token-0123456789", f"Basic {TOKEN}"],
    ids=["missing", "unknown", "not-bearer"],
)
async def test_requests_without_a_registered_bearer_token_are_unauthenticated(
    provider: Provider, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    response = await provider.client.post(QUOTES, json=eur_to_usdc("10.00"), headers=headers)

    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHENTICATED"
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_token_without_the_create_scope_is_forbidden(provider: Provider) -> None:
    token = "read-only-token-0123456789"
    await register_token(provider.client, token, "partner.currency-exchange-quote.read")

    response = await provider.client.post(
        QUOTES, json=eur_to_usdc("10.00"), headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 403
    assert response.json()["code"] == "INSUFFICIENT_SCOPE"
    assert PROVIDER_SCOPE in response.json()["message"]


async def test_a_token_registered_by_an_earlier_run_still_authenticates(
    provider: Provider, settings: Settings
) -> None:
    del provider  # it registered TOKEN; the sandbox below is a later run on the same database
    restarted = create_app(settings, ProviderConfig())
    async with in_process(restarted) as client:
        response = await client.post(
            QUOTES, json=eur_to_usdc("10.00"), headers={"Authorization": f"Bearer {TOKEN}"}
        )

    assert response.status_code == 200, response.text


async def test_registering_a_token_again_changes_its_scopes_at_once(provider: Provider) -> None:
    await provider.ok_quote(eur_to_usdc("10.00"))
    await register_token(provider.client, TOKEN, "partner.currency-exchange-quote.read")

    response = await provider.quote(eur_to_usdc("10.00"))

    assert response.status_code == 403


@pytest.mark.usefixtures("provider")
async def test_tokens_are_stored_only_as_hashes(settings: Settings) -> None:
    with psycopg.connect(settings.conninfo()) as conn:
        stored = conn.execute("SELECT token_sha256 FROM sandbox_provider.tokens").fetchall()

    assert stored
    assert all(TOKEN not in row[0] for row in stored)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            {"sell": "XAU", "buy": "USDC", "amount": {"amount": "1", "currency": "XAU"}},
            "UNSUPPORTED_CURRENCY",
        ),
        (
            {"sell": "EUR", "buy": "DOGE", "amount": {"amount": "1", "currency": "EUR"}},
            "UNSUPPORTED_CURRENCY",
        ),
        (eur_to_usdc("10.00", currency="USD"), "AMOUNT_CURRENCY_MISMATCH"),
        (
            {"sell": "EUR", "buy": "EUR", "amount": {"amount": "1", "currency": "EUR"}},
            "SAME_CURRENCY",
        ),
        (eur_to_usdc("10.001"), "INVALID_AMOUNT"),
        (eur_to_usdc("-5.00"), "INVALID_AMOUNT"),
        (eur_to_usdc("0"), "INVALID_AMOUNT"),
        (eur_to_usdc("0.0000001", currency="USDC"), "INVALID_AMOUNT"),
        (eur_to_usdc("0.000001", "INCLUSIVE", currency="USDC"), "AMOUNT_TOO_SMALL"),
        (eur_to_usdc("10.00", "SOMETIMES"), "VALIDATION_ERROR"),
        ({"sell": "EUR", "buy": "USDC"}, "VALIDATION_ERROR"),
    ],
    ids=[
        "unknown-sell",
        "unknown-buy",
        "amount-in-neither",
        "same-currency",
        "too-many-places",
        "negative",
        "zero",
        "usdc-places-ok-but-zero-eur",
        "converts-to-nothing",
        "unknown-fee-policy",
        "no-amount",
    ],
)
async def test_invalid_requests_are_refused_with_a_clear_code(
    provider: Provider, body: dict[str, Any], code: str
) -> None:
    response = await provider.quote(body)

    assert response.status_code == 400
    assert response.json()["code"] == code


async def test_quote_executed_before_valid_until_completes(provider: Provider) -> None:
    quote = await provider.ok_quote(eur_to_usdc("100.00"))
    provider.clock.advance(29)

    executed = await provider.execute(quote["id"])
    again = await provider.execute(quote["id"])
    read = await provider.read(quote["id"])

    assert executed.status_code == 200
    assert executed.json()["state"] == "COMPLETED"
    assert datetime.fromisoformat(executed.json()["completed"]) == provider.clock.now
    assert again.json() == executed.json()
    assert read.json() == executed.json()


async def test_quote_used_after_valid_until_is_refused_and_fails(provider: Provider) -> None:
    quote = await provider.ok_quote(eur_to_usdc("100.00"))
    provider.clock.advance(30)

    refused = await provider.execute(quote["id"])
    again = await provider.execute(quote["id"])
    read = await provider.read(quote["id"])

    assert refused.status_code == 409
    assert refused.json()["code"] == "QUOTE_EXPIRED"
    assert refused.json()["currencyExchangeQuoteId"] == quote["id"]
    assert again.json()["code"] == "QUOTE_EXPIRED"
    assert read.json()["state"] == "FAILED"
    assert "completed" not in read.json()


async def test_settlement_delay_shows_pending_until_completed(settings: Settings) -> None:
    clock = FakeClock()
    app = create_app(settings, ProviderConfig(clock=clock, settlement_seconds=5))
    async with in_process(app) as client:
        await register_token(client, TOKEN, PROVIDER_SCOPE, EXECUTE_SCOPE)
        provider = Provider(client, clock)
        quote = await provider.ok_quote(eur_to_usdc("100.00"))

        executed = await provider.execute(quote["id"])
        clock.advance(5)
        settled = await provider.read(quote["id"])

    assert executed.json()["state"] == "PENDING"
    assert "completed" not in executed.json()
    assert settled.json()["state"] == "COMPLETED"
    assert datetime.fromisoformat(settled.json()["completed"]) == clock.now


async def test_executing_needs_its_own_scope(provider: Provider) -> None:
    token = "quotes-only-token-0123456789"
    await register_token(provider.client, token, PROVIDER_SCOPE)
    quote = await provider.ok_quote(eur_to_usdc("100.00"))

    response = await provider.client.post(
        f"{QUOTES}/{quote['id']}/execute", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 403
    assert response.json()["code"] == "INSUFFICIENT_SCOPE"


async def test_unknown_quote_is_not_found(provider: Provider) -> None:
    response = await provider.read(str(uuid.uuid4()))

    assert response.status_code == 404
    assert response.json()["code"] == "CURRENCY_EXCHANGE_QUOTE_NOT_FOUND"


async def test_quotes_and_keys_survive_a_restart(settings: Settings) -> None:
    key = uuid.uuid4()
    async with in_process(create_app(settings)) as client:
        await register_token(client, TOKEN, PROVIDER_SCOPE)
        first = await Provider(client, FakeClock()).quote(eur_to_usdc("10.00"), key)

    async with in_process(create_app(settings)) as client:
        provider = Provider(client, FakeClock())
        duplicate = await provider.quote(eur_to_usdc("10.00"), key)
        read = await provider.read(first.json()["id"])

    assert duplicate.json()["currencyExchangeQuoteId"] == first.json()["id"]
    assert read.json() == first.json()


async def test_configured_currencies_limit_what_is_quoted(settings: Settings) -> None:
    only = {code: DEFAULT_CURRENCIES[code] for code in ("EUR", "USDC")}
    async with in_process(create_app(settings, ProviderConfig(currencies=only))) as client:
        await register_token(client, TOKEN, PROVIDER_SCOPE)
        provider = Provider(client, FakeClock())
        refused = await provider.quote(
            {"sell": "BTC", "buy": "EUR", "amount": {"amount": "1", "currency": "BTC"}}
        )
        accepted = await provider.quote(eur_to_usdc("10.00"))

    assert refused.json()["code"] == "UNSUPPORTED_CURRENCY"
    assert accepted.status_code == 200
