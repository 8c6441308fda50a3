"""`python -m tests.chaos [--orders N] [--rounds R] ...`: the chaos campaign at any scale (the
test suite runs it small); prints its table and exits 1 on any loss, duplicate, stuck order or
double movement. Needs the local stack's binaries and jars (`deploy/local/up` once)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

from services.logs import configure_logging
from services.settings import Settings
from tests.chaos.campaign import Campaign, run_campaign


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1, help="times each fault kind strikes")
    parser.add_argument("--broker-restarts", type=int, default=2)
    parser.add_argument("--pg-outage-seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    configure_logging()
    campaign = Campaign(
        orders=args.orders,
        concurrency=args.concurrency,
        seed=args.seed,
        pg_outage_seconds=args.pg_outage_seconds,
        broker_restarts=args.broker_restarts,
        rounds=args.rounds,
    )
    os.environ.setdefault("OTC_PG_PASSWORD", "unused: the campaign has its own cluster")
    root = Path(tempfile.mkdtemp(prefix="otc-chaos-"))
    try:
        verdict = asyncio.run(run_campaign(campaign, Settings(), root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(verdict.table())  # noqa: T201 - the campaign's report
    sys.exit(1 if verdict.failed else 0)


if __name__ == "__main__":
    main()
