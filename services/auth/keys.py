"""API keys in PostgreSQL, schema `auth`: random keys bound to one customer and its scopes.

A key reads `otc_<prefix>_<secret>`. The prefix (12 random letters and digits, public) finds the
row with one indexed lookup; the secret is 32 random bytes in base64url. Only the SHA-256 of the
whole key is stored, and it is compared with `hmac.compare_digest`. A fast unsalted hash is
enough because a key holds 256 random bits: there is no guessable space for a slow password hash
(bcrypt, argon2) to protect, which would only slow down every request. The plaintext is returned
once, by `create`; it is never stored, logged or part of a record.

Keys of the platform customer are operator keys: they, and only they, carry
`otc-exchanges:operate`, and each names the one operator (a person in `auth.operators`) who
holds it. The database refuses any other combination as well. Operator keys issued before
operators were named became operators of their own, named as the key.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import logging
import re
import secrets
import string
from base64 import urlsafe_b64encode
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID, uuid4

from psycopg import errors, sql
from psycopg.rows import TupleRow

from services import advisory_locks
from services.auth.principal import KNOWN_SCOPES, OperatorIdentity, Principal, Scope
from services.pg import PooledStore
from services.resources.port import PLATFORM_CUSTOMER_ID

log = logging.getLogger(__name__)

KEY_TAG = "otc"
PREFIX_LENGTH = 12
SECRET_BYTES = 32
MAX_NAME_LENGTH = 200
LAST_USED_RESOLUTION_SECONDS = 60

_PREFIX_ALPHABET = string.ascii_letters + string.digits
_SECRET_LENGTH = len(urlsafe_b64encode(bytes(SECRET_BYTES)).rstrip(b"="))
_KEY_LENGTH = len(KEY_TAG) + 1 + PREFIX_LENGTH + 1 + _SECRET_LENGTH
_KEY_SHAPE = re.compile(
    rf"{KEY_TAG}_(?P<prefix>[A-Za-z0-9]{{{PREFIX_LENGTH}}})_[A-Za-z0-9_-]{{{_SECRET_LENGTH}}}"
)

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


class ApiKeyError(Exception):
    """A request the key store refused. The message is safe to show: it never holds a key."""


class InvalidApiKeyError(ApiKeyError):
    pass


class ApiKeyNotFoundError(ApiKeyError):
    pass


@dataclass(frozen=True)
class ApiKeyRecord:
    """A key as operators see it. It holds neither the secret nor its hash."""

    id: UUID
    customer_id: UUID
    name: str
    scopes: frozenset[str]
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    operator: OperatorIdentity | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class IssuedKey:
    """A new key: the plaintext for its owner, the prefix and hash for the store."""

    plaintext: str = field(repr=False)
    prefix: str
    secret_hash: bytes = field(repr=False)


class ApiKeyVerifier(Protocol):
    """What the gateway needs of a key store; a fake for tests needs only this."""

    async def verify(self, plaintext: str) -> Principal | None: ...


def issue_key() -> IssuedKey:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    secret = secrets.token_urlsafe(SECRET_BYTES)
    plaintext = f"{KEY_TAG}_{prefix}_{secret}"
    return IssuedKey(plaintext=plaintext, prefix=prefix, secret_hash=key_hash(plaintext))


def key_prefix(plaintext: str) -> str | None:
    """The lookup prefix of a well-formed key; None for anything else."""
    if len(plaintext) != _KEY_LENGTH:
        return None
    match = _KEY_SHAPE.fullmatch(plaintext)
    return None if match is None else match.group("prefix")


def key_hash(plaintext: str) -> bytes:
    return hashlib.sha256(plaintext.encode()).digest()


def check_key_scopes(customer_id: UUID, scopes: Collection[str]) -> frozenset[str]:
    """The scopes of a new key: at least one, all known, and `otc-exchanges:operate` exactly
    when the key belongs to the platform customer."""
    if isinstance(scopes, str):
        raise InvalidApiKeyError("scopes must be a collection of scope names, not one string")
    granted = frozenset(scopes)
    if not granted:
        raise InvalidApiKeyError("a key needs at least one scope")
    unknown = granted - KNOWN_SCOPES
    if unknown:
        known = ", ".join(sorted(KNOWN_SCOPES))
        raise InvalidApiKeyError(f"unknown scope {', '.join(sorted(unknown))} (known: {known})")
    operator = Scope.OPERATE in granted
    if operator and customer_id != PLATFORM_CUSTOMER_ID:
        raise InvalidApiKeyError(f"only the platform customer's keys may carry {Scope.OPERATE}")
    if not operator and customer_id == PLATFORM_CUSTOMER_ID:
        raise InvalidApiKeyError(
            f"the platform customer's keys are operator keys: add {Scope.OPERATE}"
        )
    return granted


def check_key_name(name: str) -> str:
    text = name.strip()
    if not text:
        raise InvalidApiKeyError("name must not be empty")
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidApiKeyError(f"name is longer than {MAX_NAME_LENGTH} characters")
    return text


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
