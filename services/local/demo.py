"""Demo data for the local run: two customers with every kind of resource the API's errors need,
funded in the sandboxes, their API keys, and an operator key.

Each customer gets a read+write key and a read-only key; EUR accounts: one active, one inactive,
and one in USD (for SOURCE_WRONG_CURRENCY); wallets: two with a USDC address on different
networks, and one without. `otc demo load` prints what it made as JSON (the keys are shown only
there and kept in `.run/demo.json`, mode 600, for the run command to print again).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

import httpx

from domain.resources import AccountStatus
from services.auth.key_store import ApiKeyStore
from services.auth.principal import Scope
from services.resources.store import PostgresResourceDirectory
from services.settings import Settings

DEMO_FILE = Path(__file__).resolve().parents[2] / ".run" / "demo.json"
EUR_FUNDING = Decimal("250000.00")
USDC_FUNDING = Decimal("250000.000000")
IBANS = ("DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606")


@dataclass(frozen=True)
class DemoCustomer:
    id: str
    name: str
    write_key: str
    read_key: str
    active_account: str
    inactive_account: str
    usd_account: str
    ethereum_wallet: str
    polygon_wallet: str
    wallet_without_address: str


@dataclass(frozen=True)
class DemoData:
    customers: list[DemoCustomer]
    operator_key: str
    second_operator_key: str | None = None
    """A second person's key, for orders under dual control (none in demo files made before)."""


def evm_address() -> str:
    return "0x" + secrets.token_hex(20)


async def make_customer(
    name: str,
    settings: Settings,
    directory: PostgresResourceDirectory,
    keys: ApiKeyStore,
    sandboxes: httpx.AsyncClient,
) -> DemoCustomer:
    customer = await directory.create_customer(name)
    active = await directory.create_account(customer.id, name=f"{name} EUR", iban=IBANS[0])
    inactive = await directory.create_account(
        customer.id,
        name=f"{name} EUR (closed)",
        iban=IBANS[1],
        status=AccountStatus.INACTIVE,
    )
    usd = await directory.create_account(
        customer.id, name=f"{name} USD", iban=IBANS[2], currency="USD"
    )
    ethereum = await directory.create_wallet(
        customer.id, label="Main", network="ethereum", usdc_address=evm_address()
    )
    polygon = await directory.create_wallet(
        customer.id, label="Trading", network="polygon", usdc_address=evm_address()
    )
    bare = await directory.create_wallet(customer.id, label="Cold (no USDC)", network="ethereum")
    for account in (active, inactive):
        await post(
            sandboxes, f"{settings.bank_url}/admin/accounts/{account.account.id}/fund", EUR_FUNDING
        )
    for wallet in (ethereum, polygon):
        url = f"{settings.chain_url}/admin/wallets/{wallet.network}/{wallet.usdc_address}/fund"
        await post(sandboxes, url, USDC_FUNDING)
    write_key, _ = await keys.create(customer.id, [Scope.READ, Scope.WRITE], f"{name} read+write")
    read_key, _ = await keys.create(customer.id, [Scope.READ], f"{name} read-only")
    return DemoCustomer(
        id=str(customer.id),
        name=name,
        write_key=write_key,
        read_key=read_key,
        active_account=str(active.account.id),
        inactive_account=str(inactive.account.id),
        usd_account=str(usd.account.id),
        ethereum_wallet=str(ethereum.id),
        polygon_wallet=str(polygon.id),
        wallet_without_address=str(bare.id),
    )


async def post(client: httpx.AsyncClient, url: str, amount: Decimal) -> None:
    response = await client.post(url, json={"amount": str(amount)})
    if response.status_code >= httpx.codes.BAD_REQUEST:
        raise RuntimeError(f"funding failed: {response.status_code}")


async def load_demo(settings: Settings) -> DemoData:
    async with (
        PostgresResourceDirectory(settings) as directory,
        ApiKeyStore(settings) as keys,
        httpx.AsyncClient(timeout=10) as sandboxes,
    ):
        await directory.create_schema()
        await keys.create_schema()
        customers = [
            await make_customer(name, settings, directory, keys, sandboxes)
            for name in ("Acme Trading", "Globex Treasury")
        ]
        operator_key, _ = await keys.create_operator_key("Ada Lovelace (demo operator)")
        second_key, _ = await keys.create_operator_key("Grace Hopper (demo operator)")
    return DemoData(customers=customers, operator_key=operator_key, second_operator_key=second_key)


def saved_demo() -> DemoData | None:
    if not DEMO_FILE.exists():
        return None
    raw = json.loads(DEMO_FILE.read_text())
    return DemoData(
        customers=[DemoCustomer(**c) for c in raw["customers"]],
        operator_key=raw["operator_key"],
        second_operator_key=raw.get("second_operator_key"),
    )


def save_demo(data: DemoData) -> None:
    DEMO_FILE.parent.mkdir(exist_ok=True)
    DEMO_FILE.write_text(json.dumps(asdict(data), indent=2))
    DEMO_FILE.chmod(0o600)


async def demo_once(settings: Settings) -> DemoData:
    """The demo data, made on the first run and read back afterwards."""
    found = saved_demo()
    if found is not None:
        return found
    data = await load_demo(settings)
    save_demo(data)
    return data
