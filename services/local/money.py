"""What the local run needs to move money: a token of the provider sandbox, and the treasury's
EUR account and USDC wallets, made in the resource directory and funded in the sandboxes."""

from __future__ import annotations

import secrets
from decimal import Decimal

import httpx

from services.local.places import SECRETS
from services.resources.port import Network
from services.resources.store import PostgresResourceDirectory
from services.settings import Settings

PROVIDER_SCOPES = [
    "partner.currency-exchange-quote.create",
    "partner.currency-exchange-quote.read",
    "partner.currency-exchange.create",
]
TREASURY_EUR = Decimal("10000000.00")
TREASURY_USDC = Decimal("10000000.000000")
TREASURY_ADDRESSES = {
    Network.ETHEREUM: "0x" + "7e" * 20,
    Network.POLYGON: "0x" + "70" * 20,
    Network.SOLANA: "TreasuryUsdcSo1ana1111111111111111111111111",
}


def provider_token() -> str:
    """A token for the provider sandbox, made once and kept under .run/secrets (mode 600)."""
    path = SECRETS / "provider-token"
    if not path.exists():
        SECRETS.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


async def set_up_money(settings: Settings, token: str) -> None:
    """The provider token and a funded treasury. Every step is idempotent."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        response = await client.post(
            f"{settings.provider_url}/admin/tokens",
            json={"token": token, "scopes": PROVIDER_SCOPES},
        )
        if response.status_code not in {httpx.codes.CREATED, httpx.codes.OK, httpx.codes.CONFLICT}:
            raise SystemExit(f"provider: could not register the token ({response.status_code})")
        async with PostgresResourceDirectory(settings) as resources:
            await resources.create_schema()
            account = await resources.treasury_account()
            if account is None:
                record = await resources.create_account(
                    None,
                    name="Treasury EUR",
                    iban="DE02100100100006820101",
                    treasury=True,
                )
                account = record.account
            await fund(
                client,
                f"{settings.bank_url}/admin/accounts/{account.id}/fund",
                TREASURY_EUR,
                "treasury-eur",
            )
            for network, address in TREASURY_ADDRESSES.items():
                wallet = await resources.treasury_wallet(network)
                if wallet is None:
                    wallet = await resources.create_wallet(
                        None,
                        label=f"Treasury {network}",
                        network=network,
                        usdc_address=address,
                        treasury=True,
                    )
                url = f"{settings.chain_url}/admin/wallets/{network}/{wallet.usdc_address}/fund"
                await fund(client, url, TREASURY_USDC, f"treasury-usdc-{network}")


async def fund(client: httpx.AsyncClient, url: str, amount: Decimal, reference: str) -> None:
    response = await client.post(url, json={"amount": str(amount), "reference": reference})
    if response.status_code >= httpx.codes.BAD_REQUEST:
        raise SystemExit(
            f"funding {reference} failed: {response.status_code} {response.text[:200]}"
        )
