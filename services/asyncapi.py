"""The AsyncAPI document of the Kafka topics, docs/asyncapi.json: `python -m services.asyncapi`.

FastStream writes it from the brokers of the processes that consume and produce with it, each
built by that process's own `build` on fakes, without connecting: the engine, both treasury
workers, the webhook dispatcher. So the document names the topics, consumer groups and message
models the code uses (services/contracts.py). The relay and the gateway use plain aiokafka
clients: what they send is there as what the others receive.

One document for all of them: FastStream gives each subscriber and publisher a channel of its
own; here they are merged into one channel per topic, with one operation per process and
direction. A batch subscriber's message is one record's, not FastStream's list of them.

`python -m services.asyncapi` prints it, `--write` writes docs/asyncapi.json, `--check` fails
when the committed document is not the one the code gives (tests/unit/test_asyncapi.py runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from uuid import UUID

from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.usecase import BatchSubscriber, LogicSubscriber
from faststream.specification import AsyncAPI
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
from services.engine.service import CommandProcessor
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

DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.json"
VERSION = "1.0.0"
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


def topics(settings: Settings) -> dict[str, str]:
    """Each topic's channel description (DESIGN.md section 5)."""
    return {
        settings.commands_topic: "Commands to the engine: from the gateway, the treasury "
        "workers (outcomes), operators and the expiry sweeper. Keyed by order id.",
        settings.replies_topic: "The engine's replies. Keyed by order id; every gateway "
        "instance reads them all and keeps those whose `reply_to` header names it.",
        settings.events_topic: "Every stored order event, in order, published by the relay. "
        "Keyed by order id; at least once: dedupe by `eventId`.",
        settings.dlq_topic: "Commands the engine could not handle, as they came, with why.",
        settings.events_dlq_topic: "Order events a worker or the webhook dispatcher could not "
        "handle, as they came, with why and who gave up (`otc dlq` lists and replays them).",
    }


UNCORRELATED = frozenset({"EventEnvelope"})
"""Messages sent without a `correlation_id` header: the relay publishes events bare."""


def document() -> dict[str, Any]:
    """One document for all the processes: FastStream's document of each, merged by topic."""
    settings = documented_settings()
    merged: dict[str, Any] = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "OTC order engine: Kafka topics",
            "version": VERSION,
            "description": "Commands, replies, order events and dead letters of the OTC "
            "EUR <-> USDC order engine (DESIGN.md section 5). Every record is keyed by order "
            "id; delivery is at least once and every consumer is idempotent.",
        },
        "defaultContentType": "application/json",
        "servers": {},
        "channels": {},
        "operations": {},
        "components": {"messages": {}, "schemas": {}, "securitySchemes": {}},
    }
    described = topics(settings)
    for process in processes(settings):
        add_process(merged, process, described)
    # FastStream keeps a broker's publishers in a WeakSet: its order is not stable.
    channels, components = merged["channels"], merged["components"]
    merged["channels"] = {
        address: channels[address] for address in described if address in channels
    }
    for kind in ("messages", "schemas"):
        components[kind] = dict(sorted(components[kind].items()))
    return merged


def add_process(merged: dict[str, Any], process: Process, described: dict[str, str]) -> None:
    """FastStream's document of one process, each of its channels added to its topic's."""
    part: dict[str, Any] = AsyncAPI(process.broker).to_specification().to_jsonable()
    components = merged["components"]
    add_all(merged["servers"], part["servers"])
    add_all(components["securitySchemes"], part["components"]["securitySchemes"])
    schemas = part["components"]["schemas"]
    subscribers = {sub.specification.name: sub for sub in process.broker.subscribers}
    operations: dict[str, Any] = {}
    for key, channel in part["channels"].items():
        [message_ref] = channel["messages"].values()
        generated = part["components"]["messages"][last(message_ref)]
        name = last(generated["payload"])
        subscriber = subscribers.get(key)
        if isinstance(subscriber, BatchSubscriber):
            # FastStream documents a batch subscriber's parameter, a list of records; each
            # record on the topic is one of them.
            name = last(schemas.pop(name)["items"])
        address = channel["address"]
        topic = merged["channels"].setdefault(
            address,
            {
                "address": address,
                "description": described[address],
                "servers": channel["servers"],
                "messages": {},
                "bindings": channel["bindings"],
            },
        )
        topic["messages"][name] = {"$ref": f"#/components/messages/{name}"}
        add_all(components["messages"], {name: message_of(name, generated)})
        operation: dict[str, Any] = {
            "action": part["operations"][key]["action"],
            "channel": {"$ref": f"#/channels/{address}"},
            "messages": [{"$ref": f"#/channels/{address}/messages/{name}"}],
        }
        if channel.get("description"):
            operation["description"] = channel["description"]
        if isinstance(subscriber, LogicSubscriber) and subscriber.group_id:
            group = {"type": "string", "enum": [subscriber.group_id]}
            operation["bindings"] = {"kafka": {"groupId": group, "bindingVersion": "0.4.0"}}
        suffix = f" ({process.name})"
        operations[key if key.endswith(suffix) else key + suffix] = operation
    add_all(components["schemas"], schemas)
    receives_first = sorted(
        operations.items(), key=lambda op: (op[1]["action"] != "receive", op[0])
    )
    merged["operations"].update(receives_first)


def message_of(name: str, generated: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": name,
        "title": name,
        "payload": {"$ref": f"#/components/schemas/{name}"},
    }
    if name not in UNCORRELATED:
        message["correlationId"] = generated["correlationId"]
    return message


def add_all(into: dict[str, Any], items: dict[str, Any]) -> None:
    """`items` added to `into`; a name two processes give different things is an error."""
    for name, item in items.items():
        if into.setdefault(name, item) != item:
            raise ValueError(f"two processes document {name!r} differently")


def last(ref: dict[str, str]) -> str:
    """The name a `$ref` ends with (FastStream's names have no `/` or `~`)."""
    return unquote(ref["$ref"].rsplit("/", 1)[-1])


def rendered() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.asyncapi", description=__doc__)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help=f"write {DOCUMENT.name}")
    action.add_argument("--check", action="store_true", help="fail if it is not up to date")
    args = parser.parse_args(argv)
    text = rendered()
    if args.write:
        DOCUMENT.parent.mkdir(exist_ok=True)
        DOCUMENT.write_text(text, encoding="utf-8")
        return 0
    if args.check:
        if not DOCUMENT.is_file() or DOCUMENT.read_text(encoding="utf-8") != text:
            print(  # noqa: T201 - a command-line tool
                f"{DOCUMENT} is out of date: run `python -m services.asyncapi --write`",
                file=sys.stderr,
            )
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
