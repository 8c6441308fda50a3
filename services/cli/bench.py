"""`otc bench engine|api|webhooks`: the benchmarks of services/bench/, which print figures."""

from __future__ import annotations

import asyncio

import typer

from services.bench.api import bench_api
from services.bench.engine import bench_engine
from services.bench.webhooks import bench_webhooks
from services.settings import Settings

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print figures.")


@bench_app.command("engine")
def engine_command(
    commands: int = typer.Option(20_000, help="commands through the engine (5 per order)"),
    concurrency: int = typer.Option(500, help="orders in flight at once"),
    naive_commands: int = typer.Option(3_000, help="commands for the naive comparison"),
) -> None:
    """Sustained commands/s and reply latency of the engine, and the naive rate beside it."""
    asyncio.run(bench_engine(Settings(), commands, concurrency, naive_commands))


@bench_app.command("api")
def api_command(
    orders: int = typer.Option(300, help="complete order lifecycles"),
    concurrency: int = typer.Option(30, help="lifecycles in flight at once"),
) -> None:
    """Orders/s, quote and confirm latency, projection lag, through the running REST API."""
    asyncio.run(bench_api(Settings(), orders, concurrency))


@bench_app.command("webhooks")
def webhooks_command(
    deliveries: int = typer.Option(20_000, help="deliveries to make and send"),
    endpoints: int = typer.Option(8, help="endpoints on the receiver (each gets every event)"),
    versions: int = typer.Option(5, help="events per order (sent in version order)"),
    in_flight: int = typer.Option(64, help="attempts at once, overall"),
    per_endpoint: int = typer.Option(8, help="attempts at once, per endpoint"),
) -> None:
    """Deliveries/s and latency of the webhook sender to a fast local receiver."""
    asyncio.run(
        bench_webhooks(
            Settings(),
            deliveries=deliveries,
            endpoints=endpoints,
            versions=versions,
            in_flight=in_flight,
            per_endpoint=per_endpoint,
        )
    )
