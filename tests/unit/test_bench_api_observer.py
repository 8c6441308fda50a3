"""otc bench api's observer: an order that ends elsewhere than where the bench waits for it is
told at once, with why, not after a two-minute timeout."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.bench.api import LifecycleEndedError, Observer
from services.settings import Settings


class Rows:
    def __init__(self, rows: list[tuple[str, str, str | None]]) -> None:
        self.rows = rows

    async def execute(self, _query: str, _params: Any) -> Rows:  # noqa: ANN401
        return self

    async def fetchall(self) -> list[tuple[str, str, str | None]]:
        return self.rows


async def waiting_for(observer: Observer, order_id: str, status: str) -> asyncio.Task[None]:
    task = asyncio.create_task(observer.reached(order_id, status, timeout=5))
    await asyncio.sleep(0)
    return task


async def test_the_status_waited_for_ends_the_wait() -> None:
    observer = Observer(Settings(pg_password="unused"))
    task = await waiting_for(observer, "o-1", "pending_approval")

    await observer.statuses(Rows([("o-1", "pending_approval", None)]))  # type: ignore[arg-type]

    await task
    assert observer.waiting == {}


async def test_an_order_that_failed_instead_is_told_with_its_reason_and_what_to_do() -> None:
    observer = Observer(Settings(pg_password="unused"))
    task = await waiting_for(observer, "o-2", "pending_approval")

    await observer.statuses(Rows([("o-2", "failed", "INSUFFICIENT_FUNDS")]))  # type: ignore[arg-type]

    with pytest.raises(
        LifecycleEndedError, match=r"ended failed \(INSUFFICIENT_FUNDS\).*otc demo load"
    ):
        await task


async def test_a_status_on_the_way_keeps_the_wait() -> None:
    observer = Observer(Settings(pg_password="unused"))
    task = await waiting_for(observer, "o-3", "pending_approval")

    await observer.statuses(Rows([("o-3", "confirmed", None)]))  # type: ignore[arg-type]
    await asyncio.sleep(0)

    assert not task.done()
    task.cancel()
