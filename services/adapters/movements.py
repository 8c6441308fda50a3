"""What the bank's and the chain's clients share (services/adapters/bank.py, chain.py): a
transfer booked under our reference, read back by it and listed, each answer read as a
`Transfer` and checked to carry our reference; anything else is an unknown outcome, never a
guess. The HTTP beneath it (retries, classification of outcomes) is services/adapters/http.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import ClassVar

import httpx

from services.adapters.http import HttpUpstream, JsonObject, RetryPolicy
from services.adapters.ports import MovementUnknownError, Transfer


class HttpMovements:
    """What the bank's and the chain's clients share: a transfer booked, read back and listed,
    each answer read as a `Transfer` by the party's `reader` and checked to carry our reference
    (anything else is an unknown outcome, never a guess). A party's client names its `party`,
    its `refusals` (the codes that mean nothing moved) and its `reader`."""

    party: ClassVar[str]
    refusals: ClassVar[frozenset[str]]
    reader: ClassVar[TransferReader]

    def __init__(self, client: httpx.AsyncClient, *, retry: RetryPolicy | None = None) -> None:
        """`client` comes from `upstream_client(settings.<party>_url, ...)`."""
        self._upstream = HttpUpstream(client, party=self.party, retry=retry)

    async def _move(self, reference: str, payload: JsonObject) -> Transfer:
        transfer = self.reader(await self._upstream.move("/transfers", payload, self.refusals))
        if transfer is None or transfer.reference != reference:
            raise MovementUnknownError(
                f"{self._upstream.name}: a transfer answer without our reference"
            )
        return transfer

    async def find_transfer(self, reference: str) -> Transfer | None:
        found = await self._upstream.read_transfer(reference)
        if found is None:
            return None
        transfer = self.reader(found)
        if transfer is None or transfer.reference != reference:
            raise MovementUnknownError(
                f"{self._upstream.name}: a transfer read back without our reference"
            )
        return transfer

    async def statement(self) -> AsyncIterator[Transfer]:
        async for row in self._upstream.statement():
            transfer = self.reader(row)
            if transfer is None:
                raise MovementUnknownError(f"{self._upstream.name}: an unreadable statement line")
            yield transfer


@dataclass(frozen=True)
class TransferReader:
    """How a party's JSON reads as a `Transfer`: our `reference`, the party's own id of it
    (`external_id`), the `source` and `target` fields, an `amount`, and the chain's `network`;
    None when it does not read as one (an unknown outcome for the caller, never a guess)."""

    external_id: str
    source: str
    target: str
    network: bool = False

    def __call__(self, body: JsonObject) -> Transfer | None:
        names = ("reference", self.external_id, self.source, self.target)
        texts = [body.get(name) for name in names]
        try:
            amount = Decimal(str(body.get("amount")))
        except InvalidOperation:
            return None
        if not amount.is_finite() or not all(isinstance(text, str) for text in texts):
            return None
        found = body.get("network") if self.network else None
        reference, party_id, source, target = (str(text) for text in texts)
        return Transfer(
            reference,
            party_id,
            source,
            target,
            amount,
            network=found if isinstance(found, str) else None,
        )
