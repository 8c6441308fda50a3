"""The chaos campaign, small: 60 mixed orders through the REST API while every fault kind
strikes once (each process kind SIGKILLed, a broker restart, a PostgreSQL restart and a 60 s
outage, duplicate deliveries). Nothing lost, duplicated or stuck; the ledgers reconcile."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from services.settings import Settings
from tests.chaos.campaign import Campaign, run_campaign

pytestmark = pytest.mark.chaos


async def test_sixty_orders_through_every_fault_kind_lose_and_double_nothing(
    stack_settings: Settings,
) -> None:
    root = Path(tempfile.mkdtemp(prefix="otc-chaos-"))
    try:
        verdict = await run_campaign(
            Campaign(orders=60, concurrency=12, seed=3), stack_settings, root
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print("\n" + verdict.table())  # noqa: T201 - the campaign's figures, for the record
    assert not verdict.failed, verdict.table()
