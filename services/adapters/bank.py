"""The EUR core-banking ledger's client: transfers idempotent on our reference, read back by it.

The reference (order id + leg + attempt, built by the caller) makes every retry safe: the bank
books a reference once and answers a repeat with the original transfer. Outcomes are classified
(services/adapters/http.py): only the codes in `REFUSALS` mean nothing moved; anything else is
unknown and is learned with `find_transfer`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal, InvalidOperation
from uuid import UUID

import httpx

from services.adapters.http import HttpUpstream, JsonObject, RetryPolicy
from services.adapters.ports import LedgerPort, MovementUnknownError, Transfer

PARTY = "bank"
REFUSALS = frozenset(
    {"INSUFFICIENT_FUNDS", "ACCOUNT_NOT_FOUND", "ACCOUNT_CLOSED", "SAME_ACCOUNT", "INVALID_AMOUNT"}
)
"""The bank's refusals that mean nothing was booked (its contract says so)."""


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
        booked = await self._upstream.move(
            "/transfers",
            {
                "reference": reference,
                "fromAccount": str(from_account),
                "toAccount": str(to_account),
                "amount": format(amount, "f"),
                "currency": "EUR",
            },
            REFUSALS,
        )
        transfer = transfer_of(booked)
        if transfer is None or transfer.reference != reference:
            raise MovementUnknownError(f"{PARTY}: a transfer answer without our reference")
        return transfer

    async def find_transfer(self, reference: str) -> Transfer | None:
        found = await self._upstream.read_transfer(reference)
        if found is None:
            return None
        transfer = transfer_of(found)
        if transfer is None or transfer.reference != reference:
            raise MovementUnknownError(f"{PARTY}: a transfer read back without our reference")
        return transfer

    async def statement(self) -> AsyncIterator[Transfer]:
        async for row in self._upstream.statement():
            transfer = transfer_of(row)
            if transfer is None:
                raise MovementUnknownError(f"{PARTY}: an unreadable statement line")
            yield transfer


def transfer_of(body: JsonObject) -> Transfer | None:
    """A transfer from the bank's JSON, or None when it does not read as one."""
    fields = (body.get(n) for n in ("reference", "bankReference", "fromAccount", "toAccount"))
    reference, bank_reference, source, target = fields
    try:
        amount = Decimal(str(body.get("amount")))
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    if not all(isinstance(v, str) for v in (reference, bank_reference, source, target)):
        return None
    return Transfer(str(reference), str(bank_reference), str(source), str(target), amount)
