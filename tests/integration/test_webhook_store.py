"""The webhook store's contract on PostgreSQL (schema `webhooks`, a database of each test's own)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.settings import Settings
from services.webhooks.store import PostgresWebhookStore
from tests.webhook_store_contract import StoreContract

pytestmark = pytest.mark.integration


class TestPostgresWebhookStore(StoreContract):
    @pytest.fixture
    async def store(self, settings: Settings) -> AsyncIterator[PostgresWebhookStore]:
        async with PostgresWebhookStore(settings) as store:
            await store.create_schema()
            yield store
