"""The API key store on the local PostgreSQL, one fresh database per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import psycopg
import pytest

from services.auth.key_store import ApiKeyStore
from services.auth.keys import (
    ApiKeyNotFoundError,
    InvalidApiKeyError,
    issue_key,
    key_hash,
)
from services.auth.principal import Scope
from services.resources.port import PLATFORM_CUSTOMER_ID
from services.settings import Settings

pytestmark = pytest.mark.integration

READ_WRITE = [Scope.READ, Scope.WRITE]


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[ApiKeyStore]:
    async with ApiKeyStore(settings) as store:
        await store.create_schema()
        yield store


def stored_rows(settings: Settings) -> list[tuple[object, ...]]:
    with psycopg.connect(settings.conninfo()) as conn:
        return conn.execute("SELECT * FROM auth.api_keys").fetchall()


def with_other_secret(plaintext: str) -> str:
    last = plaintext[-1]
    return plaintext[:-1] + ("A" if last != "A" else "B")


async def test_created_key_verifies_as_its_customer_with_its_scopes(store: ApiKeyStore) -> None:
    customer = uuid4()

    plaintext, record = await store.create(customer, READ_WRITE, "CI deploy")
    principal = await store.verify(plaintext)

    assert principal is not None
    assert principal.customer_id == customer
    assert principal.scopes == {Scope.READ, Scope.WRITE}
    assert (principal.subject, principal.via) == (str(record.id), "api-key")
    assert (record.customer_id, record.name, record.scopes) == (
        customer,
        "CI deploy",
        principal.scopes,
    )
    assert plaintext.startswith(f"otc_{record.prefix}_")


async def test_only_a_hash_of_the_key_is_stored(store: ApiKeyStore, settings: Settings) -> None:
    plaintext, _ = await store.create(uuid4(), [Scope.READ], "reporting")
    secret = plaintext.split("_", 2)[2]

    (row,) = stored_rows(settings)

    assert key_hash(plaintext) in row
    assert not any(isinstance(value, str) and secret in value for value in row)
    assert not any(isinstance(value, bytes) and secret.encode() in value for value in row)


async def test_key_with_a_wrong_secret_is_refused(store: ApiKeyStore) -> None:
    plaintext, _ = await store.create(uuid4(), [Scope.READ], "reporting")

    assert await store.verify(with_other_secret(plaintext)) is None
    assert await store.verify(plaintext) is not None


async def test_well_formed_key_with_an_unknown_prefix_is_refused(store: ApiKeyStore) -> None:
    await store.create(uuid4(), [Scope.READ], "reporting")

    assert await store.verify(issue_key().plaintext) is None


@pytest.mark.parametrize("value", ["", "otc_", "not-a-key", "otc_x_y", "Bearer otc"])
async def test_malformed_key_is_refused(store: ApiKeyStore, value: str) -> None:
    assert await store.verify(value) is None


async def test_revoked_key_is_refused_at_once(store: ApiKeyStore) -> None:
    plaintext, record = await store.create(uuid4(), READ_WRITE, "laptop")
    assert await store.verify(plaintext) is not None

    revoked = await store.revoke(record.id)

    assert revoked.revoked
    assert await store.verify(plaintext) is None


async def test_revoking_again_keeps_the_first_revocation_time(store: ApiKeyStore) -> None:
    _, record = await store.create(uuid4(), READ_WRITE, "laptop")

    first = await store.revoke(record.id)
    second = await store.revoke(record.id)

    assert first.revoked_at is not None
    assert second.revoked_at == first.revoked_at


async def test_revoking_an_unknown_key_is_not_found(store: ApiKeyStore) -> None:
    with pytest.raises(ApiKeyNotFoundError, match="not found"):
        await store.revoke(uuid4())


async def test_list_is_filtered_by_customer_in_creation_order(store: ApiKeyStore) -> None:
    alice, bob = uuid4(), uuid4()
    _, first = await store.create(alice, [Scope.READ], "one")
    _, other = await store.create(bob, [Scope.READ], "two")
    _, second = await store.create(alice, READ_WRITE, "three")
    revoked = await store.revoke(first.id)

    assert await store.list(alice) == [revoked, second]
    assert await store.list(bob) == [other]
    assert [record.id for record in await store.list()] == [first.id, other.id, second.id]
    assert await store.list(uuid4()) == []


async def test_listed_records_show_no_secret(store: ApiKeyStore) -> None:
    plaintext, _ = await store.create(uuid4(), READ_WRITE, "laptop")
    secret = plaintext.split("_", 2)[2]

    shown = repr(await store.list())

    assert secret not in shown
    assert key_hash(plaintext).hex() not in shown
    assert repr(key_hash(plaintext)) not in shown


async def test_operator_key_verifies_as_the_named_operator(store: ApiKeyStore) -> None:
    plaintext, record = await store.create_operator_key("Ada Lovelace")

    principal = await store.verify(plaintext)

    assert principal is not None
    assert principal.is_operator
    assert principal.customer_id == PLATFORM_CUSTOMER_ID
    assert record.operator is not None
    assert principal.operator == record.operator
    assert principal.operator.name == "Ada Lovelace"


async def test_a_second_key_of_an_operator_names_the_same_person(store: ApiKeyStore) -> None:
    _, first = await store.create_operator_key("Ada Lovelace")
    assert first.operator is not None

    plaintext, second = await store.create_operator_key(
        "Ada Lovelace", operator_id=first.operator.id
    )

    principal = await store.verify(plaintext)
    assert principal is not None
    assert principal.operator == first.operator
    assert second.id != first.id
    with pytest.raises(InvalidApiKeyError, match="is named"):
        await store.create_operator_key("Somebody Else", operator_id=first.operator.id)


async def test_an_operator_key_without_an_operator_is_refused(store: ApiKeyStore) -> None:
    with pytest.raises(InvalidApiKeyError, match="one named operator"):
        await store.create(PLATFORM_CUSTOMER_ID, [Scope.OPERATE, Scope.READ], "ops")


async def test_operator_keys_made_before_named_operators_become_operators_of_their_own(
    store: ApiKeyStore, settings: Settings
) -> None:
    plaintext, record = await store.create_operator_key("Ada Lovelace")
    async with await psycopg.AsyncConnection.connect(settings.conninfo(), autocommit=True) as conn:
        await conn.execute(
            "ALTER TABLE auth.api_keys DROP CONSTRAINT api_keys_operator_named;"
            " UPDATE auth.api_keys SET operator_id = NULL, name = 'night desk';"
            " DELETE FROM auth.operators"
        )

    await store.create_schema()

    principal = await store.verify(plaintext)
    assert principal is not None
    assert principal.operator is not None
    assert (principal.operator.id, principal.operator.name) == (record.id, "night desk")


@pytest.mark.parametrize(
    ("customer_id", "scopes", "message"),
    [
        (uuid4(), [Scope.OPERATE], "only the platform customer"),
        (PLATFORM_CUSTOMER_ID, [Scope.READ], "operator keys"),
        (uuid4(), ["otc-exchanges:admin"], "unknown scope"),
        (uuid4(), [], "at least one scope"),
    ],
)
async def test_refused_key_writes_nothing(
    store: ApiKeyStore, settings: Settings, customer_id: UUID, scopes: list[str], message: str
) -> None:
    with pytest.raises(InvalidApiKeyError, match=message):
        await store.create(customer_id, scopes, "refused")

    assert stored_rows(settings) == []


@pytest.mark.parametrize(
    ("customer_id", "scopes"),
    [
        (uuid4(), [Scope.OPERATE.value]),
        (PLATFORM_CUSTOMER_ID, [Scope.READ.value]),
        (uuid4(), ["otc-exchanges:admin"]),
        (uuid4(), []),
    ],
)
@pytest.mark.usefixtures("store")
async def test_database_refuses_keys_the_code_would_refuse(
    settings: Settings, customer_id: UUID, scopes: list[str]
) -> None:
    issued = issue_key()

    with psycopg.connect(settings.conninfo()) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO auth.api_keys (id, customer_id, name, scopes, prefix, secret_hash)"
            " VALUES (%s, %s, 'direct', %s, %s, %s)",
            (uuid4(), customer_id, scopes, issued.prefix, issued.secret_hash),
        )


async def test_first_use_is_recorded_and_not_rewritten_within_a_minute(
    store: ApiKeyStore,
) -> None:
    plaintext, record = await store.create(uuid4(), [Scope.READ], "reporting")
    assert record.last_used_at is None

    await store.verify(plaintext)
    (first,) = await store.list()
    await store.verify(plaintext)
    (second,) = await store.list()

    assert first.last_used_at is not None
    assert second.last_used_at == first.last_used_at


async def test_refused_key_is_not_recorded_as_used(store: ApiKeyStore) -> None:
    plaintext, _ = await store.create(uuid4(), [Scope.READ], "reporting")

    await store.verify(with_other_secret(plaintext))

    assert (await store.list())[0].last_used_at is None


async def test_schema_creation_is_idempotent_and_safe_concurrently(settings: Settings) -> None:
    async with ApiKeyStore(settings) as first, ApiKeyStore(settings) as second:
        await asyncio.gather(first.create_schema(), second.create_schema())
        plaintext, _ = await first.create(uuid4(), [Scope.READ], "survives")
        await second.create_schema()

        assert await second.verify(plaintext) is not None


async def test_store_refuses_work_before_it_is_opened(settings: Settings) -> None:
    store = ApiKeyStore(settings)

    with pytest.raises(RuntimeError, match="not open"):
        await store.verify(issue_key().plaintext)
