"""`otc check conservation`: money is neither made nor lost by orders.

The sum of EUR over all core-banking accounts and of USDC over all chain wallets may change only
by explicit funding: orders only move money between accounts (and between wallets). It reads the
ledgers' totals and prints them as JSON; exit code 0 when both hold, 1 when either does not.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import httpx
import typer

from services.settings import Settings

check_app = typer.Typer(no_args_is_help=True, help="Operator checks.")


async def conservation(settings: Settings) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        bank = (await client.get(f"{settings.bank_url}/admin/totals")).raise_for_status().json()
        chain = (await client.get(f"{settings.chain_url}/admin/totals")).raise_for_status().json()
    report: dict[str, Any] = {}
    for name, totals in (("EUR", bank), ("USDC", chain)):
        balance, funded = Decimal(totals["balance"]), Decimal(totals["funded"])
        report[name] = {
            "balance": str(balance),
            "funded": str(funded),
            "difference": str(balance - funded),
            "conserved": balance == funded,
        }
    report["conserved"] = all(report[name]["conserved"] for name in ("EUR", "USDC"))
    return report


@check_app.command("conservation")
def conservation_command() -> None:
    """Sum of EUR over all accounts and of USDC over all wallets equals what was funded."""
    try:
        report = asyncio.run(conservation(Settings()))
    except httpx.HTTPError as error:
        typer.echo(f"could not read the ledgers: {type(error).__name__}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(report, indent=2))
    raise typer.Exit(0 if report["conserved"] else 1)
