"""The liquidity provider's client (seed 004): prices through currency exchange quotes.

It asks for a quote with the amount in the source currency and `feePolicy` INCLUSIVE, so the fee
comes out of the amount: `source.amount + fee.amount = sourceAmount` and `target.amount =
source.amount x rate` rounded down, which is our rule `destinationAmount = (sourceAmount - fee) x
rate`. It sends the caller's idempotency key as `idempotency-key`; when the provider answers
`DUPLICATE_CURRENCY_EXCHANGE_QUOTE` (our earlier try got through but its answer was lost), it
reads the original quote by the `currencyExchangeQuoteId` it names. A quote that does not match
the request, has FAILED, or is past its `validUntil` is refused, never priced from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

import httpx

from domain.money import Currency
from services.adapters.http import (
    HttpRejectedError,
    HttpUpstream,
    JsonObject,
    RetryPolicy,
    protocol_error,
)
from services.adapters.ports import Price, PricingPort, UpstreamRejectedError

PARTY = "provider"
DUPLICATE_CODE = "DUPLICATE_CURRENCY_EXCHANGE_QUOTE"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Request:
    source_currency: Currency
    destination_currency: Currency
    source_amount: Decimal


class HttpProviderPricing(PricingPort):
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """`client` comes from `upstream_client(settings.provider_url, ..., bearer_token=...)`."""
        self._upstream = HttpUpstream(client, party=PARTY, retry=retry)
        self._clock = clock

    async def price(
        self,
        *,
        source_currency: Currency,
        destination_currency: Currency,
        source_amount: Decimal,
        idempotency_key: UUID,
    ) -> Price:
        asked = _Request(source_currency, destination_currency, source_amount)
        payload = {
            "sell": str(source_currency),
            "buy": str(destination_currency),
            "amount": {
                "amount": format(source_amount, "f"),
                "currency": str(source_currency),
                "feePolicy": "INCLUSIVE",
            },
        }
        try:
            quote = await self._upstream.call(
                "POST",
                "/currency-exchange-quotes",
                operation="create quote",
                payload=payload,
                headers={"idempotency-key": str(idempotency_key)},
            )
        except HttpRejectedError as refusal:
            if refusal.code != DUPLICATE_CODE:
                raise
            quote = await self._upstream.call(
                "GET",
                f"/currency-exchange-quotes/{_original_quote_id(refusal.body)}",
                operation="read quote",
            )
        return self._price_from(quote, asked)

    def _price_from(self, quote: JsonObject, asked: _Request) -> Price:
        try:
            price, state = _parse(quote, asked)
        except (KeyError, TypeError, ValueError, InvalidOperation) as error:
            raise protocol_error(PARTY, f"malformed quote ({type(error).__name__})") from None
        if state == "FAILED":
            raise UpstreamRejectedError("PROVIDER_QUOTE_FAILED", "the provider's quote failed")
        if price.valid_until is not None and price.valid_until <= self._clock():
            raise UpstreamRejectedError(
                "PROVIDER_QUOTE_EXPIRED",
                "the provider's quote is past its validUntil",
            )
        return price


def _original_quote_id(body: Mapping[str, Any]) -> UUID:
    details = body.get("details")
    found = body.get("currencyExchangeQuoteId")
    if found is None and isinstance(details, dict):
        found = details.get("currencyExchangeQuoteId")
    try:
        return UUID(str(found))
    except ValueError:
        raise protocol_error(PARTY, "a duplicate without the original quote id") from None


def _amount(part: Any) -> tuple[Decimal, str]:  # noqa: ANN401 - a JSON value checked here
    amount = Decimal(str(part["amount"]))
    if not amount.is_finite():
        raise ValueError("amount is not finite")
    return amount, str(part["currency"])


def _parse(quote: JsonObject, asked: _Request) -> tuple[Price, str]:
    source, source_currency = _amount(quote["source"])
    _, target_currency = _amount(quote["target"])
    fee, fee_currency = _amount(quote["fee"])
    conversion = quote["conversionRate"]
    rate = Decimal(str(conversion["amount"]))
    currencies = (
        source_currency,
        fee_currency,
        str(conversion["sourceCurrency"]),
        target_currency,
        str(conversion["targetCurrency"]),
    )
    sold, bought = str(asked.source_currency), str(asked.destination_currency)
    if currencies != (sold, sold, sold, bought, bought):
        raise UpstreamRejectedError("PROVIDER_QUOTE_MISMATCH", "the quote is for other currencies")
    if source + fee != asked.source_amount or rate <= 0 or fee < 0:
        raise UpstreamRejectedError("PROVIDER_QUOTE_MISMATCH", "the quote is for another amount")
    valid_until = datetime.fromisoformat(str(quote["validUntil"]))
    if valid_until.tzinfo is None:
        raise ValueError("validUntil has no time zone")
    price = Price(
        rate=rate,
        fee=fee,
        provider_quote_id=str(UUID(str(quote["id"]))),
        valid_until=valid_until,
    )
    return price, str(quote.get("state", "NEW"))
