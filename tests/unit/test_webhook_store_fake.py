"""The webhook store's contract on the in-memory fake the other unit tests use."""

from __future__ import annotations

import pytest

from services.webhooks.fake import InMemoryWebhookStore
from tests.webhook_store_contract import StoreContract


class TestInMemoryWebhookStore(StoreContract):
    @pytest.fixture
    def store(self) -> InMemoryWebhookStore:
        return InMemoryWebhookStore()
