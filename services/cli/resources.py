"""`otc resources`: customers, EUR accounts and wallets, as JSON on stdout.

Refused input goes to stderr with exit code 2 and writes nothing; an unreachable database exits
with 1. Every command creates the `resources` schema first if it is missing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar
from uuid import UUID

import httpx
import typer

from domain.resources import AccountStatus, Wallet
from services.cli.on_store import run_on_store
from services.resources.port import (
    AccountRecord,
    Customer,
    InvalidResourceError,
    Network,
    ResourceError,
)
from services.resources.store import PostgresResourceDirectory
from services.settings import Settings

resources_app = typer.Typer(
    no_args_is_help=True,
    help="Customers, their EUR fiat accounts and wallets, and the platform treasury.",
)

Json = dict[str, object]
T = TypeVar("T")


CustomerOption = Annotated[
    UUID | None,
    typer.Option("--customer", help="Owning customer id; omit with --treasury."),
]
TreasuryFlag = Annotated[
    bool,
    typer.Option("--treasury", help="Owned by the platform customer, for the treasury."),
]


FundOption = Annotated[
    str | None,
    typer.Option("--fund", help="Credit this amount in the sandbox ledger (bank or chain) too."),
]


async def fund_in_sandbox(url: str, amount: str) -> None:
    """Fund the new account or wallet in its sandbox (the local run's bank or chain)."""
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(url, json={"amount": amount})
    except httpx.HTTPError as error:
        raise InvalidResourceError(
            f"created, but the sandbox could not be reached to fund it: {type(error).__name__}"
        ) from None
    if response.status_code >= httpx.codes.BAD_REQUEST:
        raise InvalidResourceError(
            f"created, but the sandbox refused the funding: {response.text[:200]}"
        )


@resources_app.command("create-customer")
def create_customer(*, name: Annotated[str, typer.Option("--name")]) -> None:
    """Register a customer."""
    _run(lambda directory: directory.create_customer(name), _customer_view)


@resources_app.command("create-account")
def create_account(
    *,
    name: Annotated[str, typer.Option("--name")],
    iban: Annotated[str, typer.Option("--iban", help="Full IBAN; only a masked form is stored.")],
    customer: CustomerOption = None,
    currency: Annotated[str, typer.Option("--currency")] = "EUR",
    inactive: Annotated[bool, typer.Option("--inactive")] = False,
    treasury: TreasuryFlag = False,
    fund: FundOption = None,
) -> None:
    """Open a fiat account (the platform's EUR treasury account with --treasury)."""
    status = AccountStatus.INACTIVE if inactive else AccountStatus.ACTIVE

    async def work(directory: PostgresResourceDirectory) -> AccountRecord:
        record = await directory.create_account(
            customer,
            name=name,
            iban=iban,
            currency=currency,
            status=status,
            treasury=treasury,
        )
        if fund is not None:
            settings = Settings()
            await fund_in_sandbox(
                f"{settings.bank_url}/admin/accounts/{record.account.id}/fund", fund
            )
        return record

    _run(work, _account_view)


@resources_app.command("create-wallet")
def create_wallet(
    *,
    label: Annotated[str, typer.Option("--label")],
    network: Annotated[Network, typer.Option("--network")],
    customer: CustomerOption = None,
    address: Annotated[str | None, typer.Option("--address", help="USDC address")] = None,
    treasury: TreasuryFlag = False,
    fund: FundOption = None,
) -> None:
    """Register a wallet (the platform's treasury wallet of a network with --treasury)."""

    async def work(directory: PostgresResourceDirectory) -> Wallet:
        wallet = await directory.create_wallet(
            customer,
            label=label,
            network=network,
            usdc_address=address,
            treasury=treasury,
        )
        if fund is not None:
            if wallet.usdc_address is None:
                raise InvalidResourceError("--fund needs a wallet with a USDC address")
            settings = Settings()
            url = f"{settings.chain_url}/admin/wallets/{wallet.network}/{wallet.usdc_address}/fund"
            await fund_in_sandbox(url, fund)
        return wallet

    _run(work, _wallet_view)


@resources_app.command("set-account-status")
def set_account_status(
    *,
    account_id: Annotated[UUID, typer.Argument(metavar="ID")],
    status: Annotated[AccountStatus, typer.Argument()],
) -> None:
    """Activate or deactivate an account; an inactive account is no order source or destination."""
    _run(lambda directory: directory.set_account_status(account_id, status), _account_view)


@resources_app.command("list-customers")
def list_customers() -> None:
    """Every customer, the platform one included, oldest first."""
    _run(lambda directory: directory.list_customers(), _each(_customer_view))


@resources_app.command("list-accounts")
def list_accounts(*, customer: Annotated[UUID | None, typer.Option("--customer")] = None) -> None:
    """Every account, or one customer's, oldest first."""
    _run(lambda directory: directory.list_accounts(customer), _each(_account_view))


@resources_app.command("list-wallets")
def list_wallets(*, customer: Annotated[UUID | None, typer.Option("--customer")] = None) -> None:
    """Every wallet, or one customer's, oldest first."""
    _run(lambda directory: directory.list_wallets(customer), _each(_wallet_view))


def _run(
    work: Callable[[PostgresResourceDirectory], Awaitable[T]], view: Callable[[T], object]
) -> None:
    run_on_store(PostgresResourceDirectory, (ResourceError,), work, view)


def _each(view: Callable[[T], Json]) -> Callable[[list[T]], list[Json]]:
    return lambda items: [view(item) for item in items]


def _customer_view(customer: Customer) -> Json:
    return {
        "id": str(customer.id),
        "name": customer.name,
        "createdAt": customer.created_at.isoformat(),
    }


def _account_view(record: AccountRecord) -> Json:
    account = record.account
    return {
        "id": str(account.id),
        "customerId": str(account.customer_id),
        "name": account.name,
        "currency": account.currency,
        "status": account.status.value,
        "ibanLast4": account.iban_last4,
        "ibanMasked": record.iban_masked,
        "isTreasury": account.is_treasury,
    }


def _wallet_view(wallet: Wallet) -> Json:
    return {
        "id": str(wallet.id),
        "customerId": str(wallet.customer_id),
        "label": wallet.label,
        "network": wallet.network,
        "usdcAddress": wallet.usdc_address,
        "isTreasury": wallet.is_treasury,
    }
