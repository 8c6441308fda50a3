"""The AsyncAPI document: the committed docs/asyncapi.json is the one the code gives (the CI
check), and it describes each topic once, with the message one record carries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.asyncapi import DOCUMENT, document, main, rendered
from services.settings import Settings

DEFAULTS = Settings(pg_password="unused")


@pytest.fixture(scope="module")
def generated() -> dict[str, Any]:
    return document()


def test_the_committed_document_is_the_one_the_code_gives() -> None:
    committed = DOCUMENT.read_text(encoding="utf-8") if DOCUMENT.is_file() else ""

    assert committed == rendered(), (
        f"{DOCUMENT} is out of date: run `python -m services.asyncapi --write` and commit it"
    )


def test_the_check_command_fails_on_a_stale_document(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("services.asyncapi.rendered", lambda: "{}\n")

    assert main(["--check"]) == 1


def test_the_document_does_not_depend_on_the_environment(
    monkeypatch: pytest.MonkeyPatch, generated: dict[str, Any]
) -> None:
    monkeypatch.setenv("OTC_EVENTS_TOPIC", "elsewhere")
    monkeypatch.setenv("OTC_KAFKA_BOOTSTRAP", "kafka.internal:9093")

    assert document() == generated


def test_each_topic_is_one_channel_with_the_message_it_carries(generated: dict[str, Any]) -> None:
    carried = {
        channel["address"]: list(channel["messages"]) for channel in generated["channels"].values()
    }

    assert carried == {
        DEFAULTS.commands_topic: ["CommandEnvelope"],
        DEFAULTS.replies_topic: ["ReplyEnvelope"],
        DEFAULTS.events_topic: ["EventEnvelope"],
        DEFAULTS.dlq_topic: ["DeadLetter"],
        DEFAULTS.events_dlq_topic: ["DeadLetter"],
    }


def test_every_process_says_what_it_receives_and_sends(generated: dict[str, Any]) -> None:
    done = {
        name: (operation["action"], operation["channel"]["$ref"].rsplit("/", 1)[-1])
        for name, operation in generated["operations"].items()
    }

    assert done == {
        "on_commands (engine)": ("receive", "otc.commands"),
        "to_replies (engine)": ("send", "otc.replies"),
        "to_commands_dlq (engine)": ("send", "otc.commands.dlq"),
        "on_order_events (eur-treasury)": ("receive", "otc.order-events"),
        "to_commands (eur-treasury)": ("send", "otc.commands"),
        "to_order_events_dlq (eur-treasury)": ("send", "otc.order-events.dlq"),
        "on_order_events (usdc-chain)": ("receive", "otc.order-events"),
        "to_commands (usdc-chain)": ("send", "otc.commands"),
        "to_order_events_dlq (usdc-chain)": ("send", "otc.order-events.dlq"),
        "on_order_events (webhooks)": ("receive", "otc.order-events"),
        "to_order_events_dlq (webhooks)": ("send", "otc.order-events.dlq"),
    }


def test_a_consumer_is_documented_with_its_group(generated: dict[str, Any]) -> None:
    operation = generated["operations"]["on_order_events (webhooks)"]

    assert operation["bindings"]["kafka"]["groupId"]["enum"] == [DEFAULTS.webhook_group]


def test_a_batch_subscriber_receives_one_envelope_per_record(generated: dict[str, Any]) -> None:
    schemas = generated["components"]["schemas"]
    message = generated["components"]["messages"]["EventEnvelope"]

    assert message["payload"] == {"$ref": "#/components/schemas/EventEnvelope"}
    assert schemas["EventEnvelope"]["type"] == "object"
    assert not [name for name, schema in schemas.items() if schema.get("type") == "array"]


def test_the_envelopes_come_with_their_descriptions_and_examples(
    generated: dict[str, Any],
) -> None:
    schema = generated["components"]["schemas"]["CommandEnvelope"]

    assert schema["examples"][0]["type"] == "RequestQuote"
    assert schema["properties"]["commandId"]["description"]


def test_no_credential_is_in_the_document() -> None:
    text = json.dumps(document())

    assert "unused" not in text
    assert "password" not in text.lower()
