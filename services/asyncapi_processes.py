"""The processes the AsyncAPI document describes (services/asyncapi.py), each with its broker
built by that process's own `build` on fakes, without connecting: the engine, both treasury
workers and the webhook dispatcher, on the system's default settings with placeholder secrets."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from faststream.kafka import KafkaBroker
from pydantic import SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from domain.movements import Party
from domain.order import Order
from domain.views import OrderView
from services import kafka
from services.adapters.fakes import FakeChain, FakeLedger, FakePricing, FakeWalletBalances
from services.dead_letters import DeadLetter
from services.engine import __main__ as engine
from services.engine.event_store import Orders
from services.engine.processor import CommandProcessor
from services.resilience import Outages
from services.resources.fake import InMemoryResourceDirectory
from services.settings import Settings
from services.webhooks import __main__ as webhooks
from services.webhooks.fake import InMemoryWebhookStore
from services.webhooks.schedule import Answer
from services.webhooks.signing import SecretBox, new_box_key
from services.webhooks.views import Wanted
from services.workers import __main__ as workers
from services.workers.movers import EurTreasury, Mover, UsdcChain
from services.workers.parked import InMemoryParkedMovements
from services.workers.treasury import Publish, TreasuryWorker

log = logging.getLogger("otc.asyncapi")


class DefaultSettings(Settings):
    """The system's own names and addresses, whatever the environment says."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],  # noqa: ARG003 - pydantic-settings' signature
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def documented_settings() -> Settings:
    """Placeholder secrets: nothing connects, and the document shows no credential."""
    unused = SecretStr("unused")
    return DefaultSettings(pg_password=unused, kafka_username="unused", kafka_password=unused)


def engine_broker(settings: Settings) -> KafkaBroker:
    broker = kafka.broker(settings, client_id="otc-engine")
    processor = CommandProcessor(
        Orders(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}),
        pricing=FakePricing(),
        balances=FakeWalletBalances(),
        resources=InMemoryResourceDirectory(),
        policy=engine.policy_of(settings),
        clock=engine.utc_now,
    )

    async def send(topic: str, value: bytes, key: bytes | None, headers: dict[str, str]) -> Any:  # noqa: ANN401, ARG001 - never called
        return asyncio.sleep(0)

    engine.build(settings, broker, processor, send, Outages("engine", log))
    return broker


def worker_broker(settings: Settings, party: Party) -> KafkaBroker:
    broker = kafka.broker(settings, client_id=f"otc-{party}")
    resources = InMemoryResourceDirectory()
    mover: Mover = (
        EurTreasury(FakeLedger(), resources)
        if party is Party.EUR_TREASURY
        else UsdcChain(FakeChain(), resources)
    )

    async def no_order(order_id: UUID) -> Order | None:  # noqa: ARG001 - never called
        return None

    def worker_of(publish: Publish, dead_letter: DeadLetter) -> TreasuryWorker:
        return TreasuryWorker(
            mover,
            load_order=no_order,
            publish=publish,
            parked=InMemoryParkedMovements(),
            dead_letter=dead_letter,
        )

    workers.build(settings, broker, worker_of, Outages(party.value, log))
    return broker


def webhooks_broker(settings: Settings) -> KafkaBroker:
    broker = kafka.broker(settings, client_id="otc-webhooks")

    async def no_views(wanted: Wanted) -> dict[tuple[UUID, int], OrderView]:  # noqa: ARG001 - never called
        return {}

    async def no_post(url: str, headers: dict[str, str], body: bytes) -> Answer:  # noqa: ARG001 - never called
        return Answer(204)

    webhooks.build(
        settings,
        broker,
        store=InMemoryWebhookStore(),
        load_views=no_views,
        post=no_post,
        box=SecretBox(new_box_key()),
    )
    return broker


@dataclass(frozen=True)
class Process:
    name: str
    broker: KafkaBroker


def processes(settings: Settings) -> list[Process]:
    return [
        Process("engine", engine_broker(settings)),
        Process(Party.EUR_TREASURY.value, worker_broker(settings, Party.EUR_TREASURY)),
        Process(Party.USDC_CHAIN.value, worker_broker(settings, Party.USDC_CHAIN)),
        Process("webhooks", webhooks_broker(settings)),
    ]
