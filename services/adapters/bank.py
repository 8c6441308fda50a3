"""The EUR core-banking ledger's client: transfers idempotent on our reference, read back by it.

The reference (order id + leg + attempt, built by the caller) makes every retry safe: the bank
books a reference once and answers a repeat with the original transfer. Outcomes are classified
(services/adapters/http.py): only the codes in `REFUSALS` mean nothing moved; anything else is
unknown and is learned with `find_transfer`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from uuid import UUID

import httpx

from services.adapters.http import HttpMovements, HttpUpstream, JsonObject, RetryPolicy
from services.adapters.ports import LedgerPort, Transfer

PARTY = "bank"
REFUSALS = frozenset(
    {"INSUFFICIENT_FUNDS", "ACCOUNT_NOT_FOUND", "ACCOUNT_CLOSED", "SAME_ACCOUNT", "INVALID_AMOUNT"}
)
"""The bank's refusals that mean nothing was booked (its contract says so)."""


class HttpLedger(HttpMovements, LedgerPort):
    def __init__(self, client: httpx.AsyncClient, *, retry: RetryPolicy | None = None) -> None:
        """`client` comes from `upstream_client(settings.bank_url, ...)`."""
        upstream = HttpUpstream(client, party=PARTY, retry=retry)
        super().__init__(upstream, refusals=REFUSALS, read=transfer_of)

    async def transfer(
        self,
        *,
        reference: str,
        from_account: UUID,
        to_account: UUID,
        amount: Decimal,
    ) -> Transfer:
        return await self._move(
            reference,
            {
                "reference": reference,
                "fromAccount": str(from_account),
                "toAccount": str(to_account),
                "amount": format(amount, "f"),
                "currency": "EUR",
            },
        )


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
