"""The money-moving system for integration tests: the three sandboxes served over HTTP on
loopback in this process, and the engine, relay and both workers as real subprocesses."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from uuid import UUID

import httpx
from pydantic import SecretStr

from domain.order import FINAL, Order, Status
from domain.resources import FiatAccount
from services.engine.event_store import Orders, open_orders
from services.local.money import PROVIDER_SCOPES, TREASURY_ADDRESSES, set_up_money
from services.local.sandbox import bank, chain, provider
from services.local.sandbox.server import serving
from services.resources.store import PostgresResourceDirectory
from services.settings import Settings
from tests.support import Customer, Process, unique_wallet_address

SETTLED = FINAL | {Status.PAYOUT_FAILED, Status.REFUND_FAILED}


@dataclass
class MoneySystem:
    settings: Settings
    bank: httpx.AsyncClient
    chain: httpx.AsyncClient
    provider: httpx.AsyncClient
    store: Orders
    processes: dict[str, Process] = field(default_factory=dict)

    def start(self, name: str, instance: int | None = None) -> Process:
        """Start one process of this kind: `name`, or `name-instance` beside others of it."""
        module, *args = {
            "engine": ["services.engine"],
            "relay": ["services.relay"],
            "eur-treasury": ["services.workers", "eur-treasury"],
            "usdc-chain": ["services.workers", "usdc-chain"],
        }[name]
        key = name if instance is None else f"{name}-{instance}"
        process = Process(module, self.settings, *args, name=key).start()
        self.processes[key] = process
        return process

    async def customer(
        self, eur: str = "0.00", usdc: str = "0.000000", network: str = "polygon"
    ) -> Customer:
        async with PostgresResourceDirectory(self.settings) as directory:
            created = await directory.create_customer("Grace")
            account = await directory.create_account(
                created.id, name="Main", iban="DE89370400440532013000"
            )
            wallet = await directory.create_wallet(
                created.id,
                label="Hot",
                network=network,
                usdc_address=unique_wallet_address(),
            )
        await self.fund_account(account.account.id, eur)
        assert wallet.usdc_address is not None
        await self.fund_wallet(network, wallet.usdc_address, usdc)
        return Customer(created.id, account.account.id, wallet.id, wallet.usdc_address, network)

    async def fund_account(self, account_id: UUID, amount: str) -> None:
        response = await self.bank.post(
            f"/admin/accounts/{account_id}/fund", json={"amount": amount}
        )
        assert response.status_code < 300, response.text

    async def fund_wallet(self, network: str, address: str, amount: str) -> None:
        response = await self.chain.post(
            f"/admin/wallets/{network}/{address}/fund", json={"amount": amount}
        )
        assert response.status_code < 300, response.text

    async def eur_balance(self, account_id: UUID) -> Decimal:
        response = await self.bank.get(f"/accounts/{account_id}")
        return Decimal(response.json()["balance"])

    async def usdc_balance(self, network: str, address: str) -> Decimal:
        response = await self.chain.get(f"/balances/{network}/{address}")
        return Decimal(response.json()["balance"])

    async def treasury_account(self) -> FiatAccount:
        async with PostgresResourceDirectory(self.settings) as directory:
            account = await directory.treasury_account()
        assert account is not None
        return account

    async def treasury_eur(self) -> Decimal:
        return await self.eur_balance((await self.treasury_account()).id)

    async def treasury_usdc(self, network: str) -> Decimal:
        return await self.usdc_balance(network, TREASURY_ADDRESSES[network])  # type: ignore[index]

    async def conserved(self) -> bool:
        """The sum over all EUR accounts and over all USDC wallets equals what was funded."""
        bank_totals = (await self.bank.get("/admin/totals")).json()
        chain_totals = (await self.chain.get("/admin/totals")).json()
        return Decimal(bank_totals["balance"]) == Decimal(bank_totals["funded"]) and Decimal(
            chain_totals["balance"]
        ) == Decimal(chain_totals["funded"])

    async def orders(self, order_ids: list[UUID]) -> dict[UUID, Order]:
        found = await asyncio.to_thread(self.store.load_many, order_ids)
        return {i: o for i, o in found.items() if isinstance(o, Order)}

    async def settled_into(self, order_id: UUID, status: Status, timeout: float = 60.0) -> Order:  # noqa: ASYNC109
        return (await self.all_in([order_id], {status}, timeout))[order_id]

    async def settled(self, order_ids: list[UUID], timeout: float = 90.0) -> dict[UUID, Order]:  # noqa: ASYNC109
        """Wait until every order is in a final status (or payout_failed); return them."""
        return await self.all_in(order_ids, SETTLED, timeout)

    async def all_in(
        self,
        order_ids: list[UUID],
        statuses: frozenset[Status] | set[Status],
        timeout: float,  # noqa: ASYNC109
    ) -> dict[UUID, Order]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            orders = await self.orders(order_ids)
            pending = [i for i in order_ids if i not in orders or orders[i].status not in statuses]
            if not pending:
                return orders
            if loop.time() > deadline:
                sample = {str(i): (orders[i].status if i in orders else None) for i in pending[:5]}
                raise AssertionError(f"{len(pending)} orders not in {statuses}, e.g. {sample}")
            await asyncio.sleep(0.3)


@asynccontextmanager
async def money_system(
    settings: Settings,
    *,
    start: tuple[str, ...] = ("engine", "relay", "eur-treasury", "usdc-chain"),
) -> AsyncIterator[MoneySystem]:
    token = secrets.token_urlsafe(24)
    async with AsyncExitStack() as stack:
        provider_url = await stack.enter_async_context(serving(provider.create_app(settings)))
        bank_url = await stack.enter_async_context(serving(bank.create_app(settings)))
        chain_url = await stack.enter_async_context(serving(chain.create_app(settings)))
        suffix = uuid.uuid4().hex[:8]
        wired = settings.model_copy(
            update={
                "upstreams": "sandbox",
                "provider_url": provider_url,
                "bank_url": bank_url,
                "chain_url": chain_url,
                "provider_token": SecretStr(token),
                "eur_worker_group": f"eur-{suffix}",
                "chain_worker_group": f"chain-{suffix}",
                "quote_ttl_seconds": 120,
                "upstream_max_attempts": 8,
            },
        )
        await set_up_money(wired, token)

        def admin(url: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(base_url=url, timeout=10)

        store = open_orders(wired)
        stack.callback(store.close)
        system = MoneySystem(
            wired,
            store=store,
            bank=await stack.enter_async_context(admin(bank_url)),
            chain=await stack.enter_async_context(admin(chain_url)),
            provider=await stack.enter_async_context(admin(provider_url)),
        )
        try:
            for name in start:
                system.start(name)
            for name in start:
                system.processes[name].wait_for_log(
                    "consuming" if name != "relay" else "relay: publishing"
                )
            yield system
        finally:
            for process in system.processes.values():
                process.stop()


__all__ = ["PROVIDER_SCOPES", "MoneySystem", "money_system"]
