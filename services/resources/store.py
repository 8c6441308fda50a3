"""The resource directory in PostgreSQL, schema `resources`.

Every write is one transaction; constraint violations come back as `ResourceError`s. The
database itself refuses what the code should never write: an unmasked IBAN, a treasury resource
outside the platform customer, a second treasury account or a second treasury wallet on a network.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any
from uuid import UUID, uuid4

from psycopg import errors, sql
from psycopg.rows import TupleRow

from domain.resources import AccountStatus, FiatAccount, Wallet
from services import advisory_locks
from services.pg import PooledStore
from services.resources.port import (
    PLATFORM_CUSTOMER_ID,
    PLATFORM_CUSTOMER_NAME,
    TREASURY_CURRENCY,
    AccountRecord,
    Customer,
    InvalidResourceError,
    ResourceConflictError,
    ResourceDirectory,
    ResourceError,
    ResourceNotFoundError,
    check_currency,
    check_network,
    check_text,
    check_usdc_address,
    mask_iban,
)

_SCHEMA = sql.SQL("""
CREATE SCHEMA IF NOT EXISTS resources;

CREATE TABLE IF NOT EXISTS resources.customers (
    id uuid PRIMARY KEY,
    name text NOT NULL CONSTRAINT customers_name_present CHECK (btrim(name) <> ''),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS resources.fiat_accounts (
    id uuid PRIMARY KEY,
    customer_id uuid NOT NULL
        CONSTRAINT fiat_accounts_customer_fk REFERENCES resources.customers (id),
    name text NOT NULL CONSTRAINT fiat_accounts_name_present CHECK (btrim(name) <> ''),
    currency char(3) NOT NULL
        CONSTRAINT fiat_accounts_currency_code CHECK (currency ~ '^[A-Z]{{3}}$'),
    status text NOT NULL DEFAULT 'active'
        CONSTRAINT fiat_accounts_status_known CHECK (status IN ('active', 'inactive')),
    iban_masked text NOT NULL
        CONSTRAINT fiat_accounts_iban_masked
        CHECK (iban_masked ~ '^[A-Z]{{2}}[0-9]{{2}}( \\*{{4}})+ [A-Z0-9]{{4}}$'),
    iban_last4 char(4) NOT NULL
        CONSTRAINT fiat_accounts_iban_last4 CHECK (iban_last4 ~ '^[A-Z0-9]{{4}}$'),
    is_treasury boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT fiat_accounts_treasury_is_platform CHECK (is_treasury = (customer_id = {platform})),
    CONSTRAINT fiat_accounts_treasury_currency CHECK (NOT is_treasury OR currency = {currency})
);
CREATE INDEX IF NOT EXISTS fiat_accounts_by_customer
    ON resources.fiat_accounts (customer_id, created_at, id);
CREATE UNIQUE INDEX IF NOT EXISTS fiat_accounts_one_treasury
    ON resources.fiat_accounts (currency) WHERE is_treasury;

CREATE TABLE IF NOT EXISTS resources.wallets (
    id uuid PRIMARY KEY,
    customer_id uuid NOT NULL
        CONSTRAINT wallets_customer_fk REFERENCES resources.customers (id),
    label text NOT NULL CONSTRAINT wallets_label_present CHECK (btrim(label) <> ''),
    network text NOT NULL
        CONSTRAINT wallets_network_known CHECK (network IN ('ethereum', 'polygon', 'solana')),
    usdc_address text,
    is_treasury boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT wallets_treasury_is_platform CHECK (is_treasury = (customer_id = {platform})),
    CONSTRAINT wallets_treasury_has_address CHECK (NOT is_treasury OR usdc_address IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS wallets_by_customer
    ON resources.wallets (customer_id, created_at, id);
CREATE UNIQUE INDEX IF NOT EXISTS wallets_one_treasury_per_network
    ON resources.wallets (network) WHERE is_treasury;
CREATE UNIQUE INDEX IF NOT EXISTS wallets_address_per_network
    ON resources.wallets (
        network,
        (CASE WHEN network = 'solana' THEN usdc_address ELSE lower(usdc_address) END)
    )
    WHERE usdc_address IS NOT NULL;
""").format(platform=sql.Literal(PLATFORM_CUSTOMER_ID), currency=sql.Literal(TREASURY_CURRENCY))

_ACCOUNT_COLUMNS = sql.SQL(
    "id, customer_id, name, currency, status, iban_last4, is_treasury, iban_masked",
)
_WALLET_COLUMNS = sql.SQL("id, customer_id, label, network, usdc_address, is_treasury")
_BY_CREATION = sql.SQL("ORDER BY created_at, id")

_SELECT_ACCOUNTS = sql.SQL("SELECT {} FROM resources.fiat_accounts").format(_ACCOUNT_COLUMNS)
_SELECT_WALLETS = sql.SQL("SELECT {} FROM resources.wallets").format(_WALLET_COLUMNS)

_CONFLICTS = {
    "fiat_accounts_one_treasury": "a EUR treasury account already exists",
    "wallets_one_treasury_per_network": "a treasury wallet already exists on this network",
    "wallets_address_per_network": "another wallet already has this address on this network",
}


class PostgresResourceDirectory(PooledStore, ResourceDirectory):
    pool_name = "resources"

    async def create_schema(self) -> None:
        """Create the schema, its tables and indexes if missing; safe to run concurrently."""
        async with self._pool.connection() as conn:
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s)", (advisory_locks.RESOURCES_SCHEMA,)
            )
            await conn.execute(_SCHEMA)

    async def accounts(self, ids: Collection[UUID]) -> dict[UUID, FiatAccount]:
        if not ids:
            return {}
        rows = await self._fetch(_SELECT_ACCOUNTS + sql.SQL(" WHERE id = ANY(%s)"), (list(ids),))
        return {row[0]: _account(row) for row in rows}

    async def wallets(self, ids: Collection[UUID]) -> dict[UUID, Wallet]:
        if not ids:
            return {}
        rows = await self._fetch(_SELECT_WALLETS + sql.SQL(" WHERE id = ANY(%s)"), (list(ids),))
        return {row[0]: _wallet(row) for row in rows}

    async def accounts_of(self, customer_id: UUID) -> list[FiatAccount]:
        return [record.account for record in await self.list_accounts(customer_id)]

    async def wallets_of(self, customer_id: UUID) -> list[Wallet]:
        return await self.list_wallets(customer_id)

    async def treasury_wallet(self, network: str) -> Wallet | None:
        query = _SELECT_WALLETS + sql.SQL(" WHERE is_treasury AND network = %s")
        rows = await self._fetch(query, (network,))
        return _wallet(rows[0]) if rows else None

    async def treasury_account(self) -> FiatAccount | None:
        query = _SELECT_ACCOUNTS + sql.SQL(" WHERE is_treasury AND currency = %s")
        rows = await self._fetch(query, (TREASURY_CURRENCY,))
        return _account(rows[0]) if rows else None

    async def list_customers(self) -> list[Customer]:
        rows = await self._fetch(
            sql.SQL("SELECT id, name, created_at FROM resources.customers {}").format(_BY_CREATION),
            (),
        )
        return [Customer(id=row[0], name=row[1], created_at=row[2]) for row in rows]

    async def list_accounts(self, customer_id: UUID | None = None) -> list[AccountRecord]:
        """All accounts, or one customer's, oldest first."""
        query, params = _filtered(_SELECT_ACCOUNTS, customer_id)
        return [_account_record(row) for row in await self._fetch(query, params)]

    async def list_wallets(self, customer_id: UUID | None = None) -> list[Wallet]:
        """All wallets, or one customer's, oldest first."""
        query, params = _filtered(_SELECT_WALLETS, customer_id)
        return [_wallet(row) for row in await self._fetch(query, params)]

    async def create_customer(self, name: str) -> Customer:
        customer_name = check_text(name, "name")
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "INSERT INTO resources.customers (id, name) VALUES (%s, %s)"
                " RETURNING id, name, created_at",
                (uuid4(), customer_name),
            )
            row = await cursor.fetchone()
        if row is None:
            raise RuntimeError("INSERT ... RETURNING gave no row")
        return Customer(id=row[0], name=row[1], created_at=row[2])

    async def create_account(  # noqa: PLR0913 - the columns of an account, all keyword-only
        self,
        customer_id: UUID | None,
        *,
        name: str,
        iban: str,
        currency: str = TREASURY_CURRENCY,
        status: AccountStatus = AccountStatus.ACTIVE,
        treasury: bool = False,
    ) -> AccountRecord:
        """Open an account; `iban` is the full IBAN, of which only a masked form is stored.

        A treasury account (EUR only, at most one) belongs to the platform customer, created on
        demand: pass `customer_id=None` or `PLATFORM_CUSTOMER_ID`.
        """
        owner = _owner(customer_id, treasury=treasury)
        account_name = check_text(name, "name")
        account_currency = check_currency(currency)
        if treasury and account_currency != TREASURY_CURRENCY:
            raise InvalidResourceError(f"the treasury account must be in {TREASURY_CURRENCY}")
        masked = mask_iban(iban)
        query = sql.SQL(
            "INSERT INTO resources.fiat_accounts"
            " (id, customer_id, name, currency, status, iban_masked, iban_last4, is_treasury)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {}",
        ).format(_ACCOUNT_COLUMNS)
        values = (
            uuid4(),
            owner,
            account_name,
            account_currency,
            AccountStatus(status).value,
            masked.masked,
            masked.last4,
            treasury,
        )
        return _account_record(await self._insert(query, values, treasury=treasury))

    async def create_wallet(
        self,
        customer_id: UUID | None,
        *,
        label: str,
        network: str,
        usdc_address: str | None = None,
        treasury: bool = False,
    ) -> Wallet:
        """Register a wallet. A treasury wallet (one per network, with an address) belongs to
        the platform customer, created on demand: pass `customer_id=None` or `PLATFORM_CUSTOMER_ID`.
        """
        owner = _owner(customer_id, treasury=treasury)
        wallet_label = check_text(label, "label")
        wallet_network = check_network(network)
        address = None if usdc_address is None else check_usdc_address(wallet_network, usdc_address)
        if treasury and address is None:
            raise InvalidResourceError("a treasury wallet needs a usdc address")
        query = sql.SQL(
            "INSERT INTO resources.wallets"
            " (id, customer_id, label, network, usdc_address, is_treasury)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING {}",
        ).format(_WALLET_COLUMNS)
        values = (uuid4(), owner, wallet_label, wallet_network.value, address, treasury)
        return _wallet(await self._insert(query, values, treasury=treasury))

    async def set_account_status(self, account_id: UUID, status: AccountStatus) -> AccountRecord:
        query = sql.SQL(
            "UPDATE resources.fiat_accounts SET status = %s WHERE id = %s RETURNING {}",
        ).format(_ACCOUNT_COLUMNS)
        async with self._pool.connection() as conn:
            cursor = await conn.execute(query, (AccountStatus(status).value, account_id))
            row = await cursor.fetchone()
        if row is None:
            raise ResourceNotFoundError(f"account {account_id} not found")
        return _account_record(row)

    async def _fetch(self, query: sql.Composed, params: Sequence[object]) -> list[TupleRow]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall()

    async def _insert(
        self,
        query: sql.Composed,
        values: Sequence[object],
        *,
        treasury: bool,
    ) -> TupleRow:
        try:
            async with self._pool.connection() as conn:
                if treasury:
                    await conn.execute(
                        "INSERT INTO resources.customers (id, name) VALUES (%s, %s)"
                        " ON CONFLICT (id) DO NOTHING",
                        (PLATFORM_CUSTOMER_ID, PLATFORM_CUSTOMER_NAME),
                    )
                cursor = await conn.execute(query, values)
                row = await cursor.fetchone()
        except errors.ForeignKeyViolation:
            raise ResourceNotFoundError(f"customer {values[1]} not found") from None
        except errors.IntegrityError as exc:
            raise _refusal(exc) from None
        if row is None:
            raise RuntimeError("INSERT ... RETURNING gave no row")
        return row


def _owner(customer_id: UUID | None, *, treasury: bool) -> UUID:
    if treasury:
        if customer_id not in {None, PLATFORM_CUSTOMER_ID}:
            raise InvalidResourceError("treasury resources belong to the platform customer")
        return PLATFORM_CUSTOMER_ID
    if customer_id is None:
        raise InvalidResourceError("a customer is required for a resource outside the treasury")
    if customer_id == PLATFORM_CUSTOMER_ID:
        raise InvalidResourceError("the platform customer holds treasury resources only")
    return customer_id


def _refusal(exc: errors.IntegrityError) -> ResourceError:
    constraint = exc.diag.constraint_name or ""
    if constraint in _CONFLICTS:
        return ResourceConflictError(_CONFLICTS[constraint])
    return InvalidResourceError(f"refused by the database ({constraint or type(exc).__name__})")


def _filtered(
    select: sql.Composed, customer_id: UUID | None
) -> tuple[sql.Composed, tuple[UUID, ...]]:
    if customer_id is None:
        return sql.Composed([select, sql.SQL(" "), _BY_CREATION]), ()
    return sql.Composed([select, sql.SQL(" WHERE customer_id = %s "), _BY_CREATION]), (customer_id,)


def _account(row: Sequence[Any]) -> FiatAccount:
    return FiatAccount(
        id=row[0],
        customer_id=row[1],
        name=row[2],
        currency=row[3],
        status=AccountStatus(row[4]),
        iban_last4=row[5],
        is_treasury=row[6],
    )


def _account_record(row: Sequence[Any]) -> AccountRecord:
    return AccountRecord(account=_account(row), iban_masked=row[7])


def _wallet(row: Sequence[Any]) -> Wallet:
    return Wallet(
        id=row[0],
        customer_id=row[1],
        label=row[2],
        network=row[3],
        usdc_address=row[4],
        is_treasury=row[5],
    )
