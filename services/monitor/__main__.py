"""The monitor process: `python -m services.monitor`. Its composition root.

It samples the lags, the dead letters and the money checks into gauges (services/monitor/
watch.py) and serves them on its metrics port, beside its probes and heartbeat. As the Kafka
principal `monitor` it may read offsets only, never a record (services/kafka_acls.py).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import AsyncExitStack

from services.engine.event_store import open_orders
from services.gateway.readiness import KafkaLags, StoreLags
from services.logs import configure_logging
from services.metrics import MONITOR, serve_metrics
from services.monitor.results import MonitorResults
from services.monitor.watch import Watch
from services.resilience import Dependency, Outages
from services.settings import Settings
from services.vitals import process_name, vitals_running

log = logging.getLogger("otc.monitor")


async def run(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    outages = Outages(process_name(settings, "monitor"), log)
    serve_metrics(settings, MONITOR)
    async with AsyncExitStack() as stack:
        orders = await asyncio.to_thread(open_orders, settings)
        stack.callback(orders.close)
        store = await stack.enter_async_context(StoreLags(settings))
        kafka = KafkaLags(settings)
        stack.push_async_callback(kafka.close)
        results = await stack.enter_async_context(MonitorResults(settings))
        await results.create_schema()
        watch = Watch(settings, orders, store, kafka, outages, results)

        def ready() -> None:
            log.info(
                "monitor: sampling every %.0f s, checking the money every %.0f s",
                settings.monitor_interval_seconds,
                settings.monitor_check_interval_seconds,
            )

        async with vitals_running(settings, outages, Dependency.POSTGRES, Dependency.KAFKA):
            await watch.run(stop, ready)
    log.info("monitor: stopped")


def main() -> None:
    configure_logging("monitor")
    asyncio.run(run(Settings()))


if __name__ == "__main__":
    main()
