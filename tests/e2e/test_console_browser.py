"""The operator console in a real headless Chromium (Debian's, driven by Playwright) against the
whole system: sign in with the operator key, see a confirmed order appear in the queue without
reloading, approve it and watch it complete; reject one; a POST without the CSRF token refused;
a customer key refused. Screenshots of the main pages go to .run/test-logs/console/ (the one of
the queue in docs/ is taken this way: docs/console-queue.png).

Without a Chromium the tests skip, unless OTC_REQUIRE_CHROMIUM is set (CI sets it; its
deploy/local/chromium installs Debian's package)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from tests.e2e.conftest import System
from tests.e2e.test_api import alice, buy_body, confirm, quote
from tests.e2e.test_approvals import pending
from tests.support import LOGS

pytestmark = pytest.mark.e2e

SHOTS = LOGS / "console"
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)  # the queue refreshes every 5 s, on a busy machine


def chromium() -> str:
    found = os.environ.get("OTC_CHROMIUM") or shutil.which("chromium")
    if found is None:
        if os.environ.get("OTC_REQUIRE_CHROMIUM"):
            pytest.fail("OTC_REQUIRE_CHROMIUM is set and no chromium is installed")
        pytest.skip("no chromium (deploy/local/chromium installs Debian's)")
    return found


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium()
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser, system: System) -> AsyncIterator[Page]:
    context = await browser.new_context(
        base_url=system.base_url, viewport={"width": 1440, "height": 900}
    )
    context.set_default_timeout(WAIT_MS)
    opened = await context.new_page()
    try:
        yield opened
    finally:
        await context.close()


async def sign_in(page: Page, key: str) -> None:
    await page.goto("/console")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("Operator API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()


def nav(page: Page, name: str) -> Locator:
    return page.get_by_role("navigation", name="Console").get_by_role("link", name=name)


async def shot(page: Page, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def api_status(client: httpx.AsyncClient, order_id: str) -> str:
    status: str = (await client.get(f"/otc-exchanges/{order_id}")).json()["status"]
    return status


async def test_an_operator_approves_a_confirmed_order_from_the_queue_and_sees_it_complete(
    page: Page, system: System
) -> None:
    me = alice(system)
    await sign_in(page, system.demo.operator_key)
    await expect(page.get_by_role("heading", name="Approvals")).to_be_visible()
    await expect(page.get_by_text("Signed in as")).to_be_visible()

    async with system.client(me.write_key) as client:
        order_id = await pending(system, client, buy_body(me, "100.00"))
        # The queue refreshes itself: the order appears without a reload.
        row = page.locator(f'tr[data-order="{order_id}"]')
        await expect(row).to_be_visible()
        await expect(row).to_contain_text("100.00 EUR")
        await expect(row).to_contain_text("one operator")
        await shot(page, "queue")

        await row.get_by_role("link", name=f"Approve order {order_id}").click()
        await expect(page.get_by_role("heading", name="Approve this order?")).to_be_visible()
        await expect(page.get_by_text("Live rate now")).to_be_visible()
        await shot(page, "approve")
        await page.get_by_role("button", name="Approve this order").click()

        await expect(page.get_by_role("status")).to_contain_text("The order is now")
        await page.get_by_role("link", name="See the order").click()
        for _ in range(60):
            if await api_status(client, order_id) == "completed":
                break
            await page.wait_for_timeout(500)
        await page.reload()
        await expect(page.locator(".facts")).to_contain_text("completed")
        timeline = page.locator(".timeline")
        await expect(timeline).to_contain_text("Approved")
        await expect(timeline).to_contain_text("Ada Lovelace (demo operator)")
        await expect(timeline).to_contain_text("PaidOut")
        await expect(page.get_by_role("heading", name="Money movements")).to_be_visible()
        await shot(page, "order")


async def test_an_operator_rejects_an_order_with_a_reason(page: Page, system: System) -> None:
    me = alice(system)
    async with system.client(me.write_key) as client:
        order_id = await pending(system, client, buy_body(me, "100.00"))
        await sign_in(page, system.demo.operator_key)
        row = page.locator(f'tr[data-order="{order_id}"]')
        await row.get_by_role("link", name=f"Reject order {order_id}").click()
        await page.get_by_label("Reason").fill("customer asked by phone")
        await page.get_by_role("button", name="Reject this order").click()

        await expect(page.get_by_role("status")).to_contain_text("The order is now")
        for _ in range(60):
            if await api_status(client, order_id) == "rejected":
                break
            await page.wait_for_timeout(500)
        assert await api_status(client, order_id) == "rejected"
    await page.goto(f"/console/orders/{order_id}")
    await expect(page.locator(".timeline")).to_contain_text("customer asked by phone")


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    page: Page, system: System
) -> None:
    me = alice(system)
    async with system.client(me.write_key) as client:
        order_id = await pending(system, client, buy_body(me, "100.00"))
        await sign_in(page, system.demo.operator_key)
        await expect(page.get_by_role("heading", name="Approvals")).to_be_visible()

        # The browser's own cookies, a form without the token: what a forged form would send.
        refused = await page.request.post(
            f"/console/orders/{order_id}/approve", form={"rateChoice": "live"}
        )

        assert refused.status == 403
        assert "CSRF_TOKEN_INVALID" in await refused.text()
        await page.wait_for_timeout(1000)
        assert await api_status(client, order_id) == "pending_approval"


async def test_a_customer_key_cannot_sign_in(page: Page, system: System) -> None:
    await sign_in(page, alice(system).write_key)

    await expect(page.get_by_role("alert")).to_contain_text("customer keys cannot sign in")
    assert page.url.endswith("/console/sign-in")
    cookies = await page.context.cookies()
    assert "otc_console" not in {cookie["name"] for cookie in cookies}
    await page.goto("/console/queue")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


async def test_the_search_attention_and_system_pages(page: Page, system: System) -> None:
    me = alice(system)
    async with system.client(me.write_key) as client:
        quoted = await quote(client, buy_body(me, "100.00"))
        assert (await confirm(client, quoted)).status_code == 201
    await sign_in(page, system.demo.operator_key)

    await nav(page, "Orders").click()
    await page.get_by_label("Order id").fill(quoted["id"])
    await page.get_by_role("button", name="Search").click()
    await expect(page.get_by_role("heading", name="1 found")).to_be_visible()
    await page.get_by_label("Order id").fill("not-a-uuid")
    await page.get_by_role("button", name="Search").click()
    await expect(page.get_by_role("alert")).to_contain_text("not a UUID")
    await page.get_by_label("Order id").fill("")
    await page.get_by_label("Customer id").fill(str(me.id))
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("table")).to_contain_text(quoted["id"][:8])
    await shot(page, "orders")

    await nav(page, "Needing attention").click()
    await expect(page.get_by_role("heading", name="Needing attention")).to_be_visible()
    await shot(page, "attention")

    await nav(page, "System").click()
    await expect(page.get_by_role("heading", name="Money checks")).to_be_visible()
    await expect(page.get_by_role("heading", name="Dead letters")).to_be_visible()
    await shot(page, "system")

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.goto("/console/queue")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
