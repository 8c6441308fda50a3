"""`python -m services.local.sandbox provider|bank|chain [--port N]`: one sandbox on 127.0.0.1.

Database settings come from the `OTC_` environment (`services.settings.Settings`). Default ports
8101 (provider), 8102 (bank) and 8103 (chain) match the default adapter URLs.
"""

from __future__ import annotations

import argparse
from decimal import Decimal

from fastapi import FastAPI

from services.local.sandbox import bank, chain, provider
from services.local.sandbox.chain_ledger import ChainConfig
from services.local.sandbox.provider_quotes import ProviderConfig
from services.local.sandbox.server import run
from services.logs import configure_logging
from services.settings import Settings

DEFAULT_PORTS = {"provider": 8101, "bank": 8102, "chain": 8103}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.local.sandbox", description=__doc__)
    parser.add_argument("sandbox", choices=sorted(DEFAULT_PORTS))
    parser.add_argument("--port", type=int, help="default: provider 8101, bank 8102, chain 8103")
    pricing = parser.add_argument_group("provider")
    defaults = ProviderConfig()
    pricing.add_argument("--seed", type=int, default=defaults.seed, help="random walk seed")
    pricing.add_argument(
        "--volatility-scale",
        type=Decimal,
        default=defaults.volatility_scale,
        help="multiplies every currency's step size (0 freezes prices)",
    )
    pricing.add_argument("--spread-bps", type=Decimal, default=defaults.spread_bps)
    pricing.add_argument("--fee-bps", type=Decimal, default=defaults.fee_bps)
    pricing.add_argument("--quote-ttl-seconds", type=float, default=defaults.quote_ttl_seconds)
    pricing.add_argument("--settlement-seconds", type=float, default=defaults.settlement_seconds)
    wallets = parser.add_argument_group("chain")
    wallets.add_argument(
        "--networks",
        default=",".join(ChainConfig().networks),
        help="comma-separated networks",
    )
    return parser.parse_args(argv)


def build_app(args: argparse.Namespace, settings: Settings) -> FastAPI:
    if args.sandbox == "provider":
        config = ProviderConfig(
            seed=args.seed,
            volatility_scale=args.volatility_scale,
            spread_bps=args.spread_bps,
            fee_bps=args.fee_bps,
            quote_ttl_seconds=args.quote_ttl_seconds,
            settlement_seconds=args.settlement_seconds,
        )
        return provider.create_app(settings, config)
    if args.sandbox == "bank":
        return bank.create_app(settings)
    networks = tuple(name.strip() for name in args.networks.split(",") if name.strip())
    return chain.create_app(settings, ChainConfig(networks=networks))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging(args.sandbox)
    run(build_app(args, Settings()), args.port or DEFAULT_PORTS[args.sandbox])


if __name__ == "__main__":
    main()
