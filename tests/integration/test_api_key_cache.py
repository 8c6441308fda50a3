"""API keys through the gateway app (in process) on the real key store, behind the cache the
gateway runs: a revoked key (`otc keys revoke`) is refused within the cache's TTL, and a key
verified a moment ago is answered without the database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast
from uuid import UUID, uuid4

import httpx
import pytest
from typer.testing import CliRunner

from services.adapters.fakes import FakeWalletBalances
from services.auth.jwt import JwtVerifier
from services.auth.key_cache import CachedApiKeys
from services.auth.key_store import ApiKeyStore
from services.auth.principal import Scope
from services.cli import app as otc
from services.command_client import CommandClient
from services.gateway.app import create_app, with_gateway
from services.gateway.auth import Credentials
from services.gateway.ports import Gateway, OrderReadModel
from services.resources.fake import InMemoryResourceDirectory
from services.settings import Settings

pytestmark = pytest.mark.integration

ACCOUNTS = "/otc-exchanges/accounts"
MARGIN_SECONDS = 1.5


async def no_history(order_id: UUID) -> list[Any]:
    del order_id
    return []


@asynccontextmanager
async def gateway_with(
    settings: Settings, store: ApiKeyStore, ttl_seconds: float
) -> AsyncIterator[httpx.AsyncClient]:
    keys = CachedApiKeys(store, ttl_seconds=ttl_seconds)
    gw = Gateway(
        resources=InMemoryResourceDirectory(),
        auth=Credentials(keys, JwtVerifier(settings)),
        read_model=cast("OrderReadModel", None),
        commands=cast("CommandClient", None),
        balances=FakeWalletBalances(),
        history=no_history,
    )
    app = create_app(lambda app: with_gateway(app, gw))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway") as client,
    ):
        yield client


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[ApiKeyStore]:
    async with ApiKeyStore(settings) as store:
        await store.create_schema()
        yield store


async def revoke_with_the_cli(
    settings: Settings, key_id: UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTC_PG_DBNAME", settings.pg_dbname)
    result = await asyncio.to_thread(CliRunner().invoke, otc, ["keys", "revoke", str(key_id)])
    assert result.exit_code == 0, result.stderr


async def test_a_revoked_key_is_refused_within_the_cache_ttl(
    settings: Settings, store: ApiKeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ttl = 1.0
    plaintext, record = await store.create(uuid4(), [Scope.READ], "CI")
    async with gateway_with(settings, store, ttl) as client:
        assert (await client.get(ACCOUNTS, headers={"x-api-key": plaintext})).status_code == 200

        await revoke_with_the_cli(settings, record.id, monkeypatch)
        revoked_at = time.monotonic()
        status = 200
        while status == 200 and time.monotonic() - revoked_at < ttl + MARGIN_SECONDS:
            await asyncio.sleep(0.05)
            status = (await client.get(ACCOUNTS, headers={"x-api-key": plaintext})).status_code
        refused_after = time.monotonic() - revoked_at

    assert status == 401
    assert refused_after <= ttl + MARGIN_SECONDS


async def test_a_key_verified_a_moment_ago_is_answered_without_the_database(
    settings: Settings, store: ApiKeyStore
) -> None:
    plaintext, _ = await store.create(uuid4(), [Scope.READ], "CI")
    async with gateway_with(settings, store, ttl_seconds=60) as client:
        first = await client.get(ACCOUNTS, headers={"x-api-key": plaintext})
        await store.close()  # from here on, a key the cache does not know cannot be verified

        again = await client.get(ACCOUNTS, headers={"x-api-key": plaintext})
        other = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
        unknown = await client.get(ACCOUNTS, headers={"x-api-key": other})

    assert (first.status_code, again.status_code) == (200, 200)
    assert unknown.status_code == 500  # not in the cache: the closed store was asked, and failed
