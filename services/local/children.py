"""What the local run runs: every process of the system as a child of the supervisor, with its
command line, where it answers, how it shows that it is ready and, if it uses Kafka, the
principal it runs as (services/kafka_acls.py; passwords from `.run/secrets/kafka/`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from services.kafka_acls import Principal, password_file
from services.local.supervision import RUN, Child
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
    return [Child(name, kind=kind, heartbeat=True, **fields) for name in names]


def core(settings: Settings) -> list[Child]:
    """The engine and workers (as many of each as the settings ask: they share their consumer
    group's partitions), and one relay, sweeper and projector (each holds a lock: a second
    would only wait)."""
    return [
        *instances(
            "engine",
            settings.engine_instances,
            argv=["-m", "services.engine"],
            environ=AsPrincipal(Principal.ENGINE),
            address=f"{settings.commands_topic} -> {settings.replies_topic}",
            ready_text="engine: consuming",
        ),
        *instances(
            "relay",
            1,
            argv=["-m", "services.relay"],
            environ=AsPrincipal(Principal.RELAY),
            address=f"event store -> {settings.events_topic}",
            ready_text="relay: publishing",
        ),
        *instances(
            "sweeper",
            1,
            argv=["-m", "services.sweeper"],
            environ=AsPrincipal(Principal.SWEEPER),
            address=f"expired quotes -> {settings.commands_topic}",
            ready_text="sweeper: expiring",
        ),
        *instances(
            "eur-treasury",
            settings.eur_treasury_instances,
            argv=["-m", "services.workers", "eur-treasury"],
            environ=AsPrincipal(Principal.EUR_TREASURY),
            address=f"{settings.events_topic} -> bank",
            ready_text="eur-treasury: consuming",
        ),
        *instances(
            "projector",
            1,
            argv=["-m", "services.projector"],
            environ=AsPrincipal(None),
            address="event store -> order_list",
            ready_text="projector: following",
        ),
        *instances(
            "usdc-chain",
            settings.usdc_chain_instances,
            argv=["-m", "services.workers", "usdc-chain"],
            environ=AsPrincipal(Principal.USDC_CHAIN),
            address=f"{settings.events_topic} -> chain",
            ready_text="usdc-chain: consuming",
        ),
        *instances(
            "webhooks",
            1,
            argv=["-m", "services.webhooks"],
            environ=AsPrincipal(Principal.WEBHOOKS),
            address=f"{settings.events_topic} -> webhook endpoints",
            ready_text="webhooks: consuming",
        ),
    ]


def gateway(settings: Settings) -> Child:
    url = f"http://{settings.gateway_host}:{settings.gateway_port}"
    return Child(
        "gateway",
        ["-m", "services.gateway"],
        address=url,
        health_url=f"{url}/health",
        environ=AsPrincipal(Principal.GATEWAY),
    )
