"""The USDC chain's client: transfers idempotent on our reference, read back by it, and live
balance reads.

As with the bank, the reference (order id + leg + attempt) makes every retry safe: a repeat
returns the original transaction hash. Only the codes in `REFUSALS` mean nothing moved; any
other outcome is unknown and is learned with `find_transfer`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from urllib.parse import quote

from services.adapters.http import protocol_error
from services.adapters.movements import HttpMovements, TransferReader
from services.adapters.ports import ChainPort, Transfer

PARTY = "chain"
REFUSALS = frozenset(
    {
        "INSUFFICIENT_FUNDS",
        "UNSUPPORTED_NETWORK",
        "INVALID_ADDRESS",
        "SAME_ADDRESS",
        "INVALID_AMOUNT",
    }
)
"""The chain's refusals that mean nothing was sent (its contract says so)."""


class HttpChain(HttpMovements, ChainPort):
    party = PARTY
    refusals = REFUSALS
    reader = TransferReader("transactionHash", "fromAddress", "toAddress", network=True)

    async def transfer(
        self,
        *,
        reference: str,
        network: str,
        from_address: str,
        to_address: str,
        amount: Decimal,
    ) -> Transfer:
        return await self._move(
            reference,
            {
                "reference": reference,
                "network": network,
                "fromAddress": from_address,
                "toAddress": to_address,
                "amount": format(amount, "f"),
            },
        )

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
