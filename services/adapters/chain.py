"""The USDC chain's client: transfers idempotent on our reference, and live balance reads.

As with the bank, the reference (order id + leg) makes every retry safe: a repeat returns the
original transaction hash. INSUFFICIENT_FUNDS, an invalid address or network, or a reference
reused for another transfer are permanent (`UpstreamRejectedError`).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from urllib.parse import quote

import httpx

from services.adapters.http import HttpUpstream, RetryPolicy, protocol_error
from services.adapters.ports import ChainPort, Transfer

PARTY = "chain"


class HttpChain(ChainPort):
    def __init__(self, client: httpx.AsyncClient, *, retry: RetryPolicy | None = None) -> None:
        """`client` comes from `upstream_client(settings.chain_url, ...)`."""
        self._upstream = HttpUpstream(client, party=PARTY, retry=retry)

    async def transfer(
        self,
        *,
        reference: str,
        network: str,
        from_address: str,
        to_address: str,
        amount: Decimal,
    ) -> Transfer:
        sent = await self._upstream.call(
            "POST",
            "/transfers",
            operation="transfer",
            payload={
                "reference": reference,
                "network": network,
                "fromAddress": from_address,
                "toAddress": to_address,
                "amount": format(amount, "f"),
            },
        )
        transaction_hash = sent.get("transactionHash")
        if sent.get("reference") != reference or not isinstance(transaction_hash, str):
            raise protocol_error(PARTY, "a transfer answer without our reference")
        return Transfer(reference=reference, external_id=transaction_hash)

    async def usdc_balance(self, *, network: str, address: str) -> Decimal:
        found = await self._upstream.call(
            "GET",
            f"/balances/{quote(network, safe='')}/{quote(address, safe='')}",
            operation="balance",
        )
        try:
            balance = Decimal(str(found["balance"]))
        except (KeyError, InvalidOperation):
            raise protocol_error(PARTY, "a balance answer without a balance") from None
        if not balance.is_finite() or balance < 0:
            raise protocol_error(PARTY, "a balance that is not a non-negative number")
        return balance
