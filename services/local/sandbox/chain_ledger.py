"""The chain sandbox's ledger in PostgreSQL, schema `sandbox_chain`: USDC wallets per (network,
address) with their balances, fundings and transfers with their transaction hashes (the booking
rule they share with the bank's: ledger.py), and which addresses each network accepts. The routes
over it: chain.py."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import Field

from services import advisory_locks
from services.local.sandbox.common import (
    REFERENCE_PATTERN,
    CamelModel,
    SandboxError,
    checked_amount,
    money,
)
from services.local.sandbox.database import Connection, Database
from services.local.sandbox.ledger import Ledger, funding_reused, refusals_ddl

SCHEMA = "sandbox_chain"
PLACES = 6
EVM_NETWORKS = frozenset({"ethereum", "polygon", "arbitrum", "base", "optimism", "avalanche"})
BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
EVM_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
SOLANA_ADDRESS = re.compile(rf"^[{BASE58_ALPHABET}]{{32,44}}$")
OTHER_ADDRESS = re.compile(r"^[A-Za-z0-9]{16,128}$")

DDL = (
    "CREATE SCHEMA IF NOT EXISTS sandbox_chain",
    refusals_ddl("sandbox_chain"),
    """CREATE TABLE IF NOT EXISTS sandbox_chain.wallets (
        network text NOT NULL,
        address text NOT NULL,
        balance numeric(24, 6) NOT NULL CHECK (balance >= 0),
        PRIMARY KEY (network, address)
    )""",
    """CREATE TABLE IF NOT EXISTS sandbox_chain.fundings (
        id bigserial PRIMARY KEY,
        reference text UNIQUE,
        network text NOT NULL,
        address text NOT NULL,
        amount numeric(24, 6) NOT NULL CHECK (amount >= 0),
        funded_at timestamptz NOT NULL DEFAULT now(),
        FOREIGN KEY (network, address) REFERENCES sandbox_chain.wallets (network, address)
    )""",
    """CREATE TABLE IF NOT EXISTS sandbox_chain.transfers (
        transaction_hash text PRIMARY KEY,
        reference text NOT NULL UNIQUE,
        network text NOT NULL,
        from_address text NOT NULL,
        to_address text NOT NULL,
        amount numeric(24, 6) NOT NULL CHECK (amount > 0),
        confirmed_at timestamptz NOT NULL DEFAULT now(),
        CHECK (from_address <> to_address)
    )""",
    "ALTER TABLE sandbox_chain.transfers ADD COLUMN IF NOT EXISTS sequence bigserial",
    "CREATE UNIQUE INDEX IF NOT EXISTS transfers_sequence ON sandbox_chain.transfers (sequence)",
)


@dataclass(frozen=True)
class ChainConfig:
    networks: Sequence[str] = ("ethereum", "polygon", "solana")


class TransferRequest(CamelModel):
    reference: str = Field(pattern=REFERENCE_PATTERN, description="the client's reference")
    network: str
    from_address: str
    to_address: str
    amount: Decimal


class FundingRequest(CamelModel):
    amount: Decimal
    reference: str | None = Field(default=None, pattern=REFERENCE_PATTERN)


def base58(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits = ""
    while number:
        number, digit = divmod(number, 58)
        digits = BASE58_ALPHABET[digit] + digits
    leading_zeros = len(data) - len(data.lstrip(b"\0"))
    return BASE58_ALPHABET[0] * leading_zeros + digits


def transaction_hash(network: str) -> str:
    if network == "solana":
        return base58(secrets.token_bytes(64))
    return "0x" + secrets.token_hex(32)


class Chain(Ledger[TransferRequest]):
    schema = SCHEMA
    transfers_lock = advisory_locks.CHAIN_TRANSFERS
    conflict_field = "transactionHash"
    id_column = "transaction_hash"

    def __init__(self, database: Database, config: ChainConfig) -> None:
        super().__init__(database)
        self._networks = tuple(config.networks)

    def network(self, network: str) -> str:
        if network not in self._networks:
            raise SandboxError(
                400,
                "UNSUPPORTED_NETWORK",
                f"network must be one of {', '.join(self._networks)}",
                field="network",
            )
        return network

    def address(self, network: str, address: str, *, field: str) -> str:
        """The canonical form of a valid address on `network` (EVM addresses lowercase)."""
        if network in EVM_NETWORKS:
            pattern = EVM_ADDRESS
        elif network == "solana":
            pattern = SOLANA_ADDRESS
        else:
            pattern = OTHER_ADDRESS
        if not pattern.fullmatch(address):
            raise SandboxError(
                400,
                "INVALID_ADDRESS",
                f"{field} is not a {network} address",
                field=field,
            )
        return address.lower() if network in EVM_NETWORKS else address

    async def _canonical(self, request: TransferRequest) -> TransferRequest:
        """Checked, addresses in canonical form; the recipient's wallet row is opened first
        (its own statement, before the transfer's locks)."""
        network = self.network(request.network)
        canonical = request.model_copy(
            update={
                "network": network,
                "from_address": self.address(network, request.from_address, field="fromAddress"),
                "to_address": self.address(network, request.to_address, field="toAddress"),
                "amount": checked_amount(request.amount, PLACES, field="amount"),
            },
        )
        if canonical.from_address == canonical.to_address:
            raise SandboxError(400, "SAME_ADDRESS", "fromAddress and toAddress must differ")
        async with self._db.connection() as conn:
            await self._open_wallet(conn, network, canonical.to_address)
        return canonical

    def _same(self, booked: Mapping[str, Any], request: TransferRequest) -> bool:
        fields = ("network", "from_address", "to_address", "amount")
        return all(booked[name] == getattr(request, name) for name in fields)

    async def _book(self, conn: Connection, request: TransferRequest) -> dict[str, Any]:
        cursor = await conn.execute(
            "SELECT address, balance FROM sandbox_chain.wallets"
            " WHERE network = %s AND address = ANY(%s) ORDER BY address FOR UPDATE",
            (request.network, [request.from_address, request.to_address]),
        )
        balances = {row["address"]: row["balance"] for row in await cursor.fetchall()}
        if balances.get(request.from_address, Decimal(0)) < request.amount:
            raise SandboxError(422, "INSUFFICIENT_FUNDS", "the balance does not cover the amount")
        cursor = await conn.execute(
            "INSERT INTO sandbox_chain.transfers"
            " (transaction_hash, reference, network, from_address, to_address, amount)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
            (
                transaction_hash(request.network),
                request.reference,
                request.network,
                request.from_address,
                request.to_address,
                request.amount,
            ),
        )
        booked = await cursor.fetchone()
        if booked is None:
            raise RuntimeError("INSERT ... RETURNING returned no row")
        for address, delta in (
            (request.from_address, -request.amount),
            (request.to_address, request.amount),
        ):
            await conn.execute(
                "UPDATE sandbox_chain.wallets SET balance = balance + %s"
                " WHERE network = %s AND address = %s",
                (delta, request.network, address),
            )
        return booked

    async def _open_wallet(self, conn: Connection, network: str, address: str) -> None:
        await conn.execute(
            "INSERT INTO sandbox_chain.wallets (network, address, balance) VALUES (%s, %s, 0)"
            " ON CONFLICT (network, address) DO NOTHING",
            (network, address),
        )

    async def balance(self, network: str, address: str) -> dict[str, object]:
        network = self.network(network)
        address = self.address(network, address, field="address")
        async with self._db.connection() as conn:
            cursor = await conn.execute(
                "SELECT balance FROM sandbox_chain.wallets WHERE network = %s AND address = %s",
                (network, address),
            )
            row = await cursor.fetchone()
        balance = Decimal(0) if row is None else row["balance"]
        return {
            "network": network,
            "address": address,
            "currency": "USDC",
            "balance": money(balance, PLACES),
        }

    async def fund(self, network: str, address: str, request: FundingRequest) -> dict[str, object]:
        network = self.network(network)
        address = self.address(network, address, field="address")
        amount = checked_amount(request.amount, PLACES, field="amount", allow_zero=True)
        async with self._db.transaction() as conn:
            await self._open_wallet(conn, network, address)
            cursor = await conn.execute(
                "INSERT INTO sandbox_chain.fundings (reference, network, address, amount)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (reference) DO NOTHING RETURNING id",
                (request.reference, network, address, amount),
            )
            if await cursor.fetchone() is not None:
                await conn.execute(
                    "UPDATE sandbox_chain.wallets SET balance = balance + %s"
                    " WHERE network = %s AND address = %s",
                    (amount, network, address),
                )
            else:
                await self._check_same_funding(conn, (network, address, amount), request.reference)
        return await self.balance(network, address)

    async def _check_same_funding(
        self,
        conn: Connection,
        funding: tuple[str, str, Decimal],
        reference: str | None,
    ) -> None:
        cursor = await conn.execute(
            "SELECT network, address, amount FROM sandbox_chain.fundings WHERE reference = %s",
            (reference,),
        )
        found = await cursor.fetchone()
        if found is None or (found["network"], found["address"], found["amount"]) != funding:
            raise funding_reused()

    async def totals(self) -> dict[str, object]:
        async with self._db.connection() as conn:
            cursor = await conn.execute(
                "SELECT n.network,"
                " (SELECT count(*) FROM sandbox_chain.wallets w WHERE w.network = n.network)"
                " AS wallets,"
                " (SELECT coalesce(sum(balance), 0) FROM sandbox_chain.wallets w"
                " WHERE w.network = n.network) AS balance,"
                " (SELECT coalesce(sum(amount), 0) FROM sandbox_chain.fundings f"
                " WHERE f.network = n.network) AS funded"
                " FROM unnest(%s::text[]) AS n(network)",
                (list(self._networks),),
            )
            rows = await cursor.fetchall()
        return {
            "currency": "USDC",
            "balance": money(sum((row["balance"] for row in rows), Decimal(0)), PLACES),
            "funded": money(sum((row["funded"] for row in rows), Decimal(0)), PLACES),
            "networks": [
                {
                    "network": row["network"],
                    "wallets": row["wallets"],
                    "balance": money(row["balance"], PLACES),
                    "funded": money(row["funded"], PLACES),
                }
                for row in rows
            ],
        }
