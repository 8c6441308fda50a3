"""The table of services/kafka_acls.py: who may write and read what on Kafka."""

from __future__ import annotations

import pytest

from services.kafka_acls import Grant, Principal, access, grants, system_grants
from services.local.children import AsPrincipal, core, gateway, sandboxes
from services.settings import Settings

SETTINGS = Settings(pg_password="unused")


def principals_that(operation: str, topic: str, settings: Settings = SETTINGS) -> set[str]:
    return {
        g.principal.removeprefix("User:")
        for g in grants(settings)
        if (g.resource, g.pattern, g.name, g.operation) == ("TOPIC", "LITERAL", topic, operation)
    }


def test_only_the_relay_and_operators_write_order_events() -> None:
    assert principals_that("WRITE", SETTINGS.events_topic) == {"relay", "operator"}


def test_only_the_engine_writes_replies_and_dead_commands() -> None:
    assert principals_that("WRITE", SETTINGS.replies_topic) == {"engine"}
    assert principals_that("WRITE", SETTINGS.dlq_topic) == {"engine"}


def test_only_the_engine_reads_commands() -> None:
    assert principals_that("READ", SETTINGS.commands_topic) == {"engine"}


def test_commands_come_from_the_gateway_workers_sweeper_and_operators() -> None:
    assert principals_that("WRITE", SETTINGS.commands_topic) == {
        "gateway",
        "eur-treasury",
        "usdc-chain",
        "sweeper",
        "operator",
    }


def test_dead_order_events_come_from_the_workers_and_the_webhook_dispatcher() -> None:
    assert principals_that("WRITE", SETTINGS.events_dlq_topic) == {
        "eur-treasury",
        "usdc-chain",
        "webhooks",
    }


def test_each_consumer_group_belongs_to_one_principal() -> None:
    owners: dict[str, set[str]] = {}
    for g in grants(SETTINGS):
        if (g.resource, g.operation) == ("GROUP", "READ"):
            owners.setdefault(g.name, set()).add(g.principal)

    assert {name: len(users) for name, users in owners.items()} == dict.fromkeys(owners, 1)
    assert owners[SETTINGS.engine_group] == {"User:engine"}
    assert owners[SETTINGS.eur_worker_group] == {"User:eur-treasury"}
    assert owners[SETTINGS.chain_worker_group] == {"User:usdc-chain"}
    assert owners[SETTINGS.webhook_group] == {"User:webhooks"}


def test_no_principal_may_do_more_than_read_write_and_describe() -> None:
    assert {g.operation for g in grants(SETTINGS)} == {"READ", "WRITE", "DESCRIBE"}
    assert {g.resource for g in grants(SETTINGS)} == {"TOPIC", "GROUP"}


def test_only_the_gateway_and_the_monitor_see_the_offsets_of_groups_they_do_not_consume_as() -> (
    None
):
    watched = {
        (g.principal, g.name)
        for g in grants(SETTINGS)
        if (g.resource, g.operation) == ("GROUP", "DESCRIBE")
    }

    assert watched == {
        ("User:gateway", SETTINGS.engine_group),
        ("User:gateway", SETTINGS.eur_worker_group),
        ("User:gateway", SETTINGS.chain_worker_group),
        ("User:monitor", SETTINGS.engine_group),
        ("User:monitor", SETTINGS.eur_worker_group),
        ("User:monitor", SETTINGS.chain_worker_group),
        ("User:monitor", SETTINGS.webhook_group),
        ("User:monitor", f"otc-dlq-replay.{SETTINGS.dlq_topic}"),
        ("User:monitor", f"otc-dlq-replay.{SETTINGS.events_dlq_topic}"),
    }


def test_the_monitor_reads_no_record_and_writes_nothing() -> None:
    monitor = {(g.operation, g.resource) for g in grants(SETTINGS) if g.principal == "User:monitor"}

    assert monitor == {("DESCRIBE", "TOPIC"), ("DESCRIBE", "GROUP")}


def test_grants_follow_the_configured_names() -> None:
    renamed = SETTINGS.model_copy(update={"events_topic": "t-events", "engine_group": "g-engine"})

    assert principals_that("WRITE", "t-events", renamed) == {"relay", "operator"}
    assert Grant("User:engine", "GROUP", "LITERAL", "g-engine", "READ") in grants(renamed)
    assert principals_that("WRITE", SETTINGS.events_topic, renamed) == set()


def test_the_system_grants_are_those_of_the_default_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTC_EVENTS_TOPIC", "elsewhere")

    assert system_grants() == set(grants(SETTINGS))


def test_every_process_that_uses_kafka_runs_as_a_principal_of_the_table() -> None:
    children = {child.name: child.environ for child in [*core(SETTINGS), gateway(SETTINGS)]}

    assert children == {
        "engine": AsPrincipal(Principal.ENGINE),
        "relay": AsPrincipal(Principal.RELAY),
        "sweeper": AsPrincipal(Principal.SWEEPER),
        "eur-treasury": AsPrincipal(Principal.EUR_TREASURY),
        "usdc-chain": AsPrincipal(Principal.USDC_CHAIN),
        "projector": AsPrincipal(None),
        "webhooks": AsPrincipal(Principal.WEBHOOKS),
        "monitor": AsPrincipal(Principal.MONITOR),
        "gateway": AsPrincipal(Principal.GATEWAY),
    }
    principals = {e.principal for e in children.values() if isinstance(e, AsPrincipal)}
    assert principals - {None} <= set(access(SETTINGS))


def test_the_sandboxes_get_no_kafka_principal() -> None:
    assert {child.environ for child in sandboxes(SETTINGS)} == {AsPrincipal(None)}
