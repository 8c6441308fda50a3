"""Fixtures of the engine's integration tests: a customer with resources, and the engine running
as a subprocess with a command client talking to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.command_client import CommandClient
from services.settings import Settings
from tests.support import Customer, make_customer, running

ENGINE_READY = "engine: consuming"


@pytest.fixture
async def customer(otc_settings: Settings) -> Customer:
    return await make_customer(otc_settings)


@pytest.fixture
async def client(otc_settings: Settings) -> AsyncIterator[CommandClient]:
    with running("services.engine", otc_settings, ENGINE_READY):
        async with CommandClient(otc_settings) as command_client:
            yield command_client
