"""`otc bench engine|api|webhooks|provider|rebuild`: the benchmarks of services/bench/, which print
figures."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from services.bench.api import LifecycleEndedError, bench_api
from services.bench.engine import bench_engine
from services.bench.provider import bench_provider
from services.bench.rebuild import bench_rebuild
from services.bench.report import write_section
from services.bench.webhooks import bench_webhooks
from services.settings import Settings

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print figures.")


@bench_app.command("engine")
def engine_command(
    *,
    orders: int = typer.Option(2_000, help="order lifecycles through the engine (5 commands each)"),
    concurrency: int = typer.Option(50, help="orders in flight at once, engine and naive alike"),
    naive_orders: int = typer.Option(600, help="order lifecycles for the naive peer"),
    all_at_once: Annotated[
        bool,
        typer.Option(
            "--all-at-once",
            help="publish each order's five commands together without awaiting replies",
        ),
    ] = False,
    record: Annotated[
        bool, typer.Option("--record", help="also write the figures into docs/benchmarks.md")
    ] = False,
) -> None:
    """Commands/s and per-command latency of the engine against the naive peer, at the same
    concurrency, on the system's real pattern; then the engine's latency at half its rate."""
    settings = Settings()
    figures = asyncio.run(
        bench_engine(settings, orders, concurrency, naive_orders, together=all_at_once)
    )
    for line in figures.lines():
        typer.echo(line)
    if record:
        command = f"otc bench engine --concurrency {concurrency} --orders {orders}" + (
            " --all-at-once" if all_at_once else ""
        )
        # The bench runs its engine on the fake provider and chain (services/bench/engine.py).
        write_section(
            "engine", command, figures.lines(), settings.model_copy(update={"upstreams": "fake"})
        )


@bench_app.command("api")
def api_command(
    *,
    orders: int = typer.Option(300, help="complete order lifecycles"),
    concurrency: int = typer.Option(30, help="lifecycles in flight at once"),
    record: Annotated[
        bool, typer.Option("--record", help="also write the figures into docs/benchmarks.md")
    ] = False,
) -> None:
    """Complete orders/s through the running REST API (closed loop), then quote, confirm and
    approve latency at half that rate, where their time went, and the relay's and the
    projection's lag."""
    settings = Settings()
    try:
        lines = asyncio.run(bench_api(settings, orders, concurrency))
    except LifecycleEndedError as ended:
        typer.echo(f"otc bench api: {ended}", err=True)
        raise typer.Exit(1) from None
    for line in lines:
        typer.echo(line)
    if record:
        command = f"otc bench api --orders {orders} --concurrency {concurrency}"
        write_section("api", command, lines, settings)


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


@bench_app.command("provider")
def provider_command(
    url: Annotated[
        str | None,
        typer.Option(help="a running provider sandbox; default: one started on a scratch database"),
    ] = None,
    concurrency: int = typer.Option(50, help="quotes in flight at once"),
    rounds: int = typer.Option(10, help="rounds of that many quotes, after one to warm up"),
) -> None:
    """Round time and per-quote latency of the provider sandbox under concurrent quotes."""
    figures = asyncio.run(
        bench_provider(Settings(), url=url, concurrency=concurrency, rounds=rounds)
    )
    for line in figures.lines():
        typer.echo(line)


@bench_app.command("rebuild")
def rebuild_command(
    *,
    orders: int = typer.Option(20_000, help="order lifecycles in the store (5 events each)"),
    in_flight: int = typer.Option(
        2_000, help="orders in flight while filling: how far apart one order's events lie"
    ),
    record: Annotated[
        bool, typer.Option("--record", help="also write the figures into docs/benchmarks.md")
    ] = False,
) -> None:
    """Events/s of `otc projections rebuild order-list` on a store of its own, with the
    projector running and orders written and listed meanwhile; the comparison it ends with."""
    settings = Settings()
    figures = bench_rebuild(settings, orders, in_flight)
    for line in figures.lines():
        typer.echo(line)
    if record:
        command = f"otc bench rebuild --orders {orders} --in-flight {in_flight}"
        write_section("rebuild", command, figures.lines(), settings)
