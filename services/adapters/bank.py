"""The EUR core-banking ledger's client: transfers idempotent on our reference, read back by it.

The reference (order id + leg + attempt, built by the caller) makes every retry safe: the bank
books a reference once and answers a repeat with the original transfer. Outcomes are classified
(services/adapters/http.py): only the codes in `REFUSALS` mean nothing moved; anything else is
unknown and is learned with `find_transfer`.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from services.adapters.movements import HttpMovements, TransferReader
from services.adapters.ports import LedgerPort, Transfer

PARTY = "bank"
REFUSALS = frozenset(
    {"INSUFFICIENT_FUNDS", "ACCOUNT_NOT_FOUND", "ACCOUNT_CLOSED", "SAME_ACCOUNT", "INVALID_AMOUNT"}
)
"""The bank's refusals that mean nothing was booked (its contract says so)."""


class HttpLedger(HttpMovements, LedgerPort):
    party = PARTY
    refusals = REFUSALS
    reader = TransferReader("bankReference", "fromAccount", "toAccount")

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
