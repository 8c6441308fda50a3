"""API keys in PostgreSQL, schema `auth` (what a key is: services/auth/keys.py): the keys'
hashes, their scopes and the operators who hold operator keys. The database refuses an operator
scope on anyone's key but the platform customer's, and an operator key without its operator.
Operator keys issued before operators were named became operators of their own, named as the
key.
"""

from __future__ import annotations

import builtins
import hmac
import logging
from collections.abc import Collection, Sequence
from typing import Any
from uuid import UUID, uuid4

from psycopg import errors, sql
from psycopg.rows import TupleRow

from services import advisory_locks
from services.auth.keys import (
    LAST_USED_RESOLUTION_SECONDS,
    PREFIX_LENGTH,
    ApiKeyNotFoundError,
    ApiKeyRecord,
    InvalidApiKeyError,
    check_key_name,
    check_key_scopes,
    issue_key,
    key_hash,
    key_prefix,
)
from services.auth.principal import KNOWN_SCOPES, OperatorIdentity, Principal, Scope
from services.pg import PooledStore
from services.resources.port import PLATFORM_CUSTOMER_ID

log = logging.getLogger(__name__)

_SCHEMA = sql.SQL("""
CREATE SCHEMA IF NOT EXISTS auth;

CREATE TABLE IF NOT EXISTS auth.api_keys (
    id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    name text NOT NULL CONSTRAINT api_keys_name_present CHECK (btrim(name) <> ''),
    scopes text[] NOT NULL
        CONSTRAINT api_keys_scopes_known CHECK (cardinality(scopes) > 0 AND scopes <@ {known}),
    prefix text NOT NULL
        CONSTRAINT api_keys_prefix_unique UNIQUE
        CONSTRAINT api_keys_prefix_shape CHECK (prefix ~ '^[A-Za-z0-9]{{{length}}}$'),
    secret_hash bytea NOT NULL
        CONSTRAINT api_keys_hash_is_sha256 CHECK (octet_length(secret_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    revoked_at timestamptz,
    last_used_at timestamptz,
    CONSTRAINT api_keys_operate_is_platform
        CHECK (({operate} = ANY (scopes)) = (customer_id = {platform}))
);
CREATE INDEX IF NOT EXISTS api_keys_by_customer ON auth.api_keys (customer_id, created_at, id);

CREATE TABLE IF NOT EXISTS auth.operators (
    id uuid PRIMARY KEY,
    name text NOT NULL CONSTRAINT operators_name_present CHECK (btrim(name) <> ''),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
ALTER TABLE auth.api_keys ADD COLUMN IF NOT EXISTS operator_id uuid REFERENCES auth.operators (id);
INSERT INTO auth.operators (id, name)
    SELECT id, name FROM auth.api_keys
    WHERE operator_id IS NULL AND {operate} = ANY (scopes)
    ON CONFLICT (id) DO NOTHING;
UPDATE auth.api_keys SET operator_id = id WHERE operator_id IS NULL AND {operate} = ANY (scopes);
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'api_keys_operator_named') THEN
        ALTER TABLE auth.api_keys ADD CONSTRAINT api_keys_operator_named
            CHECK ((operator_id IS NOT NULL) = ({operate} = ANY (scopes)));
    END IF;
END $$;
""").format(
    known=sql.SQL("ARRAY[{}]::text[]").format(
        sql.SQL(", ").join(sql.Literal(scope) for scope in sorted(KNOWN_SCOPES))
    ),
    length=sql.SQL(str(PREFIX_LENGTH)),
    operate=sql.Literal(Scope.OPERATE.value),
    platform=sql.Literal(PLATFORM_CUSTOMER_ID),
)

_RECORD_COLUMNS = sql.SQL(
    "k.id, k.customer_id, k.name, k.scopes, k.prefix, k.created_at, k.revoked_at,"
    " k.last_used_at, k.operator_id, o.name"
)
_SELECT_RECORDS = sql.SQL(
    "SELECT {} FROM auth.api_keys AS k LEFT JOIN auth.operators AS o ON o.id = k.operator_id"
).format(_RECORD_COLUMNS)
_BY_CREATION = sql.SQL("ORDER BY k.created_at, k.id")
_SELECT_FOR_VERIFY = sql.SQL(
    "SELECT k.id, k.customer_id, k.scopes, k.secret_hash, k.revoked_at IS NOT NULL,"
    " k.last_used_at IS NULL OR k.last_used_at < clock_timestamp() - make_interval(secs => {}),"
    " k.operator_id, o.name"
    " FROM auth.api_keys AS k LEFT JOIN auth.operators AS o ON o.id = k.operator_id"
    " WHERE k.prefix = %s"
).format(sql.Literal(LAST_USED_RESOLUTION_SECONDS))


class ApiKeyStore(PooledStore):
    """Its connections are in autocommit: `verify` is one indexed read, plus a write of
    `last_used_at` at most once a minute per key."""

    pool_name = "auth"
    autocommit = True

    async def create_schema(self) -> None:
        """Create the schema, its table and index if missing; safe to run concurrently."""
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_locks.AUTH_SCHEMA,))
            await conn.execute(_SCHEMA)

    async def create(
        self,
        customer_id: UUID,
        scopes: Collection[str],
        name: str,
        *,
        operator_id: UUID | None = None,
    ) -> tuple[str, ApiKeyRecord]:
        """A new key for the customer (for an operator key: held by `operator_id`): its
        plaintext (shown once, stored nowhere) and record."""
        granted = check_key_scopes(customer_id, scopes)
        key_name = check_key_name(name)
        if (Scope.OPERATE in granted) != (operator_id is not None):
            raise InvalidApiKeyError("an operator key is held by exactly one named operator")
        issued = issue_key()
        key_id = uuid4()
        query = sql.SQL(
            "INSERT INTO auth.api_keys"
            " (id, customer_id, name, scopes, prefix, secret_hash, operator_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
        )
        values = (
            key_id,
            customer_id,
            key_name,
            sorted(granted),
            issued.prefix,
            issued.secret_hash,
            operator_id,
        )
        try:
            async with self._pool.connection() as conn:
                await conn.execute(query, values)
        except errors.IntegrityError as exc:
            constraint = exc.diag.constraint_name or type(exc).__name__
            raise InvalidApiKeyError(f"refused by the database ({constraint})") from None
        record = await self._one(key_id)
        log.info("API key %s created for customer %s", record.id, record.customer_id)
        return issued.plaintext, record

    async def create_operator_key(
        self, name: str, *, operator_id: UUID | None = None
    ) -> tuple[str, ApiKeyRecord]:
        """An operator key (operate and read scopes) for the person `name`: a new operator, or
        another key of the operator `operator_id`, whose name must then match."""
        person = check_key_name(name)
        async with self._pool.connection() as conn:
            if operator_id is None:
                operator_id = uuid4()
                await conn.execute(
                    "INSERT INTO auth.operators (id, name) VALUES (%s, %s)", (operator_id, person)
                )
            else:
                cursor = await conn.execute(
                    "SELECT name FROM auth.operators WHERE id = %s", (operator_id,)
                )
                found = await cursor.fetchone()
                if found is None:
                    raise ApiKeyNotFoundError(f"operator {operator_id} not found")
                if found[0] != person:
                    raise InvalidApiKeyError(f"operator {operator_id} is named {found[0]!r}")
        return await self.create(
            PLATFORM_CUSTOMER_ID,
            [Scope.OPERATE, Scope.READ],
            f"{person}'s key",
            operator_id=operator_id,
        )

    async def operator(self, operator_id: UUID) -> OperatorIdentity | None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT id, name FROM auth.operators WHERE id = %s", (operator_id,)
            )
            found = await cursor.fetchone()
        return None if found is None else OperatorIdentity(found[0], found[1])

    async def _one(self, key_id: UUID) -> ApiKeyRecord:
        query = sql.SQL("{} WHERE k.id = %s").format(_SELECT_RECORDS)
        rows = await self._fetch(query, (key_id,))
        if not rows:
            raise ApiKeyNotFoundError(f"API key {key_id} not found")
        return _record(rows[0])

    async def verify(self, plaintext: str) -> Principal | None:
        """The principal of a valid key; None for a malformed, unknown, wrong or revoked one."""
        prefix = key_prefix(plaintext)
        if prefix is None:
            return None
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_SELECT_FOR_VERIFY, (prefix,))
            row = await cursor.fetchone()
            if row is None:
                return None
            key_id, customer_id, scopes, secret_hash, revoked, stale, operator_id, person = row
            if not hmac.compare_digest(secret_hash, key_hash(plaintext)) or revoked:
                return None
            if stale:
                await conn.execute(
                    "UPDATE auth.api_keys SET last_used_at = clock_timestamp() WHERE id = %s",
                    (key_id,),
                )
        return Principal(
            customer_id=customer_id,
            scopes=frozenset(scopes),
            subject=str(key_id),
            via="api-key",
            operator=None if operator_id is None else OperatorIdentity(operator_id, person),
        )

    async def list(self, customer_id: UUID | None = None) -> builtins.list[ApiKeyRecord]:
        """All keys, or one customer's, revoked ones included, oldest first."""
        if customer_id is None:
            query = sql.SQL("{} {}").format(_SELECT_RECORDS, _BY_CREATION)
            return [_record(row) for row in await self._fetch(query, ())]
        query = sql.SQL("{} WHERE k.customer_id = %s {}").format(_SELECT_RECORDS, _BY_CREATION)
        return [_record(row) for row in await self._fetch(query, (customer_id,))]

    async def revoke(self, key_id: UUID) -> ApiKeyRecord:
        """Revoke a key for good; revoking it again keeps the first revocation time."""
        query = sql.SQL(
            "UPDATE auth.api_keys SET revoked_at = coalesce(revoked_at, clock_timestamp())"
            " WHERE id = %s RETURNING id"
        )
        if not await self._fetch(query, (key_id,)):
            raise ApiKeyNotFoundError(f"API key {key_id} not found")
        log.info("API key %s revoked", key_id)
        return await self._one(key_id)

    async def _fetch(
        self, query: sql.SQL | sql.Composed, params: Sequence[object]
    ) -> builtins.list[TupleRow]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall()


def _record(row: Sequence[Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row[0],
        customer_id=row[1],
        name=row[2],
        scopes=frozenset(row[3]),
        prefix=row[4],
        created_at=row[5],
        revoked_at=row[6],
        last_used_at=row[7],
        operator=None if row[8] is None else OperatorIdentity(row[8], row[9]),
    )
