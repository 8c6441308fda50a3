"""What the local run runs: every process of the system as a child of the supervisor, with its
command line, where it answers, how it shows that it is ready and, if it uses Kafka, the
principal it runs as (services/kafka_acls.py; passwords from `.run/secrets/kafka/`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from services.kafka_acls import Principal, password_file
from services.local.places import RUN
from services.local.processes import Child
from services.settings import Settings

KAFKA_CREDENTIALS = ("OTC_KAFKA_USERNAME", "OTC_KAFKA_PASSWORD")


@dataclass(frozen=True)
class AsPrincipal:
    """A child's environment: the supervisor's, with the Kafka credentials of `principal` in
    place of any others (read when it starts); a process that does not use Kafka gets none."""

    principal: Principal | None

    def __call__(self, env: dict[str, str]) -> dict[str, str]:
        env = {name: value for name, value in env.items() if name not in KAFKA_CREDENTIALS}
        if self.principal is None:
            return env
        path = password_file(RUN, self.principal)
        if not path.exists():
            raise SystemExit(
                f"no Kafka password for {self.principal} in {path.parent}; run deploy/local/up"
            )
        username, password = KAFKA_CREDENTIALS
        return {**env, username: str(self.principal), password: path.read_text().strip()}


def sandboxes(settings: Settings) -> list[Child]:
    return [
        Child(
            name,
            ["-m", "services.local.sandbox", name, "--port", str(httpx.URL(url).port)],
            address=url,
            health_url=f"{url}/health",
            environ=AsPrincipal(None),
        )
        for name, url in (
            ("provider", settings.provider_url),
            ("bank", settings.bank_url),
            ("chain", settings.chain_url),
        )
    ]


def instances(kind: str, count: int, **fields: Any) -> list[Child]:  # noqa: ANN401 - Child's
    """`count` children of one kind: `engine` alone, or `engine-1`, `engine-2`, ..."""
    names = [kind] if count == 1 else [f"{kind}-{n}" for n in range(1, count + 1)]
    return [Child(name, kind=kind, heartbeat=True, metrics=True, **fields) for name in names]


def core(settings: Settings) -> list[Child]:
    """The engine and workers (as many of each as the settings ask: they share their consumer
    group's partitions), and one relay, sweeper and projector (each holds a lock: a second
    would only wait), webhook dispatcher and monitor."""
    events, commands = settings.events_topic, settings.commands_topic
    table: list[tuple[str, int, list[str], Principal | None, str]] = [
        # kind, instances, arguments after -m, Kafka principal, what it connects
        (
            "engine",
            settings.engine_instances,
            ["services.engine"],
            Principal.ENGINE,
            f"{commands} -> {settings.replies_topic}",
        ),
        ("relay", 1, ["services.relay"], Principal.RELAY, f"event store -> {events}"),
        ("sweeper", 1, ["services.sweeper"], Principal.SWEEPER, f"expired quotes -> {commands}"),
        (
            "eur-treasury",
            settings.eur_treasury_instances,
            ["services.workers", "eur-treasury"],
            Principal.EUR_TREASURY,
            f"{events} -> bank",
        ),
        ("projector", 1, ["services.projector"], None, "event store -> order_list"),
        (
            "usdc-chain",
            settings.usdc_chain_instances,
            ["services.workers", "usdc-chain"],
            Principal.USDC_CHAIN,
            f"{events} -> chain",
        ),
        (
            "webhooks",
            1,
            ["services.webhooks"],
            Principal.WEBHOOKS,
            f"{events} -> webhook endpoints",
        ),
        ("monitor", 1, ["services.monitor"], Principal.MONITOR, "lags, dead letters, money"),
    ]
    return [
        child
        for kind, count, module, principal, address in table
        for child in instances(
            kind,
            count,
            argv=["-m", *module],
            environ=AsPrincipal(principal),
            address=address,
            ready_text=f"{kind}: {READY_WORDS[kind]}",
        )
    ]


READY_WORDS = {
    "engine": "consuming",
    "relay": "publishing",
    "sweeper": "expiring",
    "eur-treasury": "consuming",
    "projector": "following",
    "usdc-chain": "consuming",
    "webhooks": "consuming",
    "monitor": "sampling",
}
"""The word of each process's log line that says it is ready (`<kind>: <word>`)."""


def gateway(settings: Settings) -> Child:
    url = f"http://{settings.gateway_host}:{settings.gateway_port}"
    return Child(
        "gateway",
        ["-m", "services.gateway"],
        address=url,
        health_url=f"{url}/health",
        environ=AsPrincipal(Principal.GATEWAY),
        metrics_address=f"{settings.gateway_host}:{settings.gateway_port}",
    )
