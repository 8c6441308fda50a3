"""The AsyncAPI document of the Kafka topics, docs/asyncapi.json: `python -m services.asyncapi`.

FastStream writes it from the brokers of the processes that consume and produce with it, each
built by that process's own `build` on fakes, without connecting: the engine, both treasury
workers, the webhook dispatcher. So the document names the topics, consumer groups and message
models the code uses (services/contracts.py). The relay and the gateway use plain aiokafka
clients: what they send is there as what the others receive.

One document for all of them: FastStream gives each subscriber and publisher a channel of its
own; here they are merged into one channel per topic, with one operation per process and
direction. A batch subscriber's message is one record's, not FastStream's list of them. The
processes and their brokers on fakes are services/asyncapi_processes.py's.

`python -m services.asyncapi` prints it, `--write` writes docs/asyncapi.json, `--check` fails
when the committed document is not the one the code gives (tests/unit/test_asyncapi.py runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from faststream.kafka.subscriber.usecase import BatchSubscriber, LogicSubscriber
from faststream.specification import AsyncAPI

from services.asyncapi_processes import Process, documented_settings, processes
from services.settings import Settings

DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.json"
VERSION = "1.0.0"


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
