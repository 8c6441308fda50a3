"""The EUR core-banking ledger's client: transfers idempotent on our reference.

The reference (order id + leg, built by the caller) makes every retry safe: the bank books a
reference once and answers a repeat with the original transfer. INSUFFICIENT_FUNDS, an unknown
account or a reference reused for another transfer are permanent (`UpstreamRejectedError`).
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import httpx

from services.adapters.http import HttpUpstream, RetryPolicy, protocol_error
from services.adapters.ports import LedgerPort, Transfer

PARTY = "bank"


class HttpLedger(LedgerPort):
    def __init__(self, client: httpx.AsyncClient, *, retry: RetryPolicy | None = None) -> None:
        """`client` comes from `upstream_client(settings.bank_url, ...)`."""
        self._upstream = HttpUpstream(client, party=PARTY, retry=retry)

    async def transfer(
        self,
        *,
        reference: str,
        from_account: UUID,
        to_account: UUID,
        amount: Decimal,
    ) -> Transfer:
        booked = await self._upstream.call(
            "POST",
            "/transfers",
            operation="transfer",
            payload={
                "reference": reference,
                "fromAccount": str(from_account),
                "toAccount": str(to_account),
                "amount": format(amount, "f"),
                "currency": "EUR",
            },
        )
        bank_reference = booked.get("bankReference")
        if booked.get("reference") != reference or not isinstance(bank_reference, str):
            raise protocol_error(PARTY, "a transfer answer without our reference")
        return Transfer(reference=reference, external_id=bank_reference)
