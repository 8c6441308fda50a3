"""The gateway process: `python -m services.gateway`. Its composition root."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from uuid import UUID

import uvicorn
from fastapi import FastAPI

from domain.order import Order
from services.auth.jwt import JwtVerifier
from services.auth.key_cache import CachedApiKeys
from services.auth.key_store import ApiKeyStore
from services.command_client import CommandClient
from services.engine.event_store import open_orders
from services.gateway.app import create_app
from services.gateway.auth import Credentials
from services.gateway.console.ports import ConsolePorts
from services.gateway.console.rates import LiveRates
from services.gateway.console.sessions import Sessions
from services.gateway.ports import Gateway
from services.gateway.positions import (
    PositionListener,
    PositionWatch,
    listening,
    position_reader,
)
from services.gateway.readiness import KafkaLags, Readiness, StoreLags
from services.logs import configure_logging
from services.monitor.results import MonitorResults
from services.projector import open_order_list
from services.resilience import Backoff, Dependency, Outages
from services.resources.store import PostgresResourceDirectory
from services.settings import Settings
from services.upstreams import open_upstreams
from services.vitals import process_name, vitals_running
from services.webhooks.endpoints import open_webhook_endpoints

log = logging.getLogger("otc.gateway")


def lifespan_for(settings: Settings, outages: Outages) -> object:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(
                vitals_running(settings, outages, Dependency.POSTGRES, Dependency.KAFKA)
            )
            resources = await stack.enter_async_context(PostgresResourceDirectory(settings))
            await resources.create_schema()
            keys = await stack.enter_async_context(ApiKeyStore(settings))
            await keys.create_schema()
            app.state.webhooks = await stack.enter_async_context(open_webhook_endpoints(settings))
            read_model = open_order_list(settings)
            stack.callback(read_model.close)
            positions = PositionWatch()
            listener = PositionListener(
                settings.conninfo(),
                positions,
                position_reader(read_model.max_tracking_id),
                backoff=Backoff(settings.retry_initial_seconds, settings.retry_max_seconds),
                outages=outages,
            )
            await stack.enter_async_context(listening(listener))
            orders = open_orders(settings)
            stack.callback(orders.close)
            commands = CommandClient(settings, instance_id=f"gateway-{uuid.uuid4().hex[:12]}")
            await commands.start()
            stack.push_async_callback(commands.stop_quietly)
            pricing, balances = await stack.enter_async_context(open_upstreams(settings))
            findings = await stack.enter_async_context(MonitorResults(settings))
            store_lags = await stack.enter_async_context(StoreLags(settings))
            kafka_lags = KafkaLags(settings)
            stack.push_async_callback(kafka_lags.close)

            async def history(order_id: UUID) -> list[Order.Event]:
                def read() -> list[Order.Event]:
                    return [e for e in orders.events.get(order_id) if isinstance(e, Order.Event)]

                return await asyncio.to_thread(read)

            app.state.gateway = Gateway(
                resources=resources,
                auth=Credentials(
                    CachedApiKeys(keys, ttl_seconds=settings.api_key_cache_seconds),
                    JwtVerifier(settings),
                ),
                read_model=read_model,
                commands=commands,
                balances=balances,
                history=history,
                reply_timeout=settings.gateway_reply_timeout_seconds,
                positions=positions,
                read_your_writes_seconds=settings.read_your_writes_seconds,
                dual_control_eur=settings.dual_control_eur,
                readiness=Readiness(settings, store_lags, kafka_lags).report,
                retry_after_seconds=settings.retry_after_seconds,
                console=ConsolePorts(
                    sessions=Sessions(settings.console_session_seconds),
                    live_rates=LiveRates(pricing),
                    findings=findings.findings,
                    collar_bps=settings.approval_collar_bps,
                ),
            )
            log.info(
                "gateway: listening on http://%s:%d", settings.gateway_host, settings.gateway_port
            )
            yield

    return lifespan


def main() -> None:
    configure_logging("gateway")
    settings = Settings()
    outages = Outages(process_name(settings, "gateway"), log)
    app = create_app(
        lifespan_for(settings, outages),  # type: ignore[arg-type]
        retry_after_seconds=settings.retry_after_seconds,
        outages=outages,
    )
    # Its own loggers through ours (JSON lines), without its access lines: RequestTelemetry
    # logs each request with its route and ids.
    uvicorn.run(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level="info",
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
