"""What on-call sees of a running system: every process's metrics moving after a few orders,
one order's path through the logs of every process, and no secret in any log line."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from services.cli import app as otc
from services.cli.logs import order_lines, read_lines
from services.local.demo import IBANS
from services.local.places import RUN, read_state
from tests.e2e.conftest import System, free_port, new_key
from tests.e2e.test_api import buy_body
from tests.support import eventually, secrets_in

pytestmark = pytest.mark.e2e

PROCESSES = {
    "supervisor",
    "gateway",
    "engine",
    "relay",
    "sweeper",
    "eur-treasury",
    "projector",
    "usdc-chain",
    "webhooks",
    "monitor",
}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def targets(system: System) -> dict[str, str]:
    listed = json.loads(system.places.metrics_targets.read_text())
    return {entry["labels"]["process"]: entry["targets"][0] for entry in listed}


async def scrape(address: str) -> Samples:
    async with httpx.AsyncClient(timeout=10) as http:
        page = (await http.get(f"http://{address}/metrics")).raise_for_status().text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }


async def scrape_all(system: System) -> dict[str, Samples]:
    found = targets(system)
    pages = await asyncio.gather(*(scrape(address) for address in found.values()))
    return dict(zip(found, pages, strict=True))


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def a_completed_buy(system: System, request_id: str) -> str:
    customer = system.demo.customers[0]
    async with system.client(customer.write_key) as client:
        quote = await client.post(
            "/otc-exchanges/quote", json=buy_body(customer), headers={"X-Request-Id": request_id}
        )
        assert quote.status_code == 200, quote.text
        assert quote.headers["X-Request-Id"] == request_id
        order_id: str = quote.json()["id"]
        confirmed = await client.post(
            "/otc-exchanges",
            json={"quoteId": order_id, "side": "buy"},
            headers={"Idempotency-Key": new_key()},
        )
        assert confirmed.status_code == 201, confirmed.text
        await system.wait_status(client, order_id, "pending_approval")
        async with system.client(system.demo.operator_key) as operator:
            approved = await operator.post(f"/ops/otc-exchanges/{order_id}/approve", json={})
            assert approved.status_code == 200, approved.text
        await system.wait_status(client, order_id, "completed")
        refused = await client.post(f"/otc-exchanges/{order_id}/cancel")
        assert refused.status_code == 409
    return order_id


async def an_expired_quote(system: System) -> None:
    customer = system.demo.customers[0]
    async with system.client(customer.write_key) as client:
        quote = await client.post("/otc-exchanges/quote", json=buy_body(customer))
        assert quote.status_code == 200, quote.text
        await system.wait_status(client, quote.json()["id"], "expired")


async def a_webhook_endpoint_that_never_answers(system: System) -> dict[str, Any]:
    """An endpoint nothing listens on: every delivery to it fails and is retried."""
    customer = system.demo.customers[0]
    async with system.client(customer.write_key) as client:
        made = await client.post(
            "/webhook-endpoints", json={"url": f"http://127.0.0.1:{free_port()}/hooks"}
        )
    assert made.status_code == 201, made.text
    endpoint: dict[str, Any] = made.json()
    return endpoint


async def test_every_process_shows_its_figures_moving_after_a_few_orders(system: System) -> None:
    before = await scrape_all(system)
    await a_webhook_endpoint_that_never_answers(system)

    order_id = await a_completed_buy(system, f"req-{uuid.uuid4().hex[:12]}")
    await an_expired_quote(system)

    after = await eventually(lambda: scrape_all(system), timeout=30)
    assert set(after) == PROCESSES

    def moved(process: str, name: str, **labels: str) -> float:
        return value(after[process], name, **labels) - value(before[process], name, **labels)

    http = "otc_http_requests_total"
    assert moved("gateway", http, route="/otc-exchanges/quote", method="POST", status="200") >= 1
    cancel = "/otc-exchanges/{order_id}/cancel"
    assert moved("gateway", http, route=cancel, method="POST", status="409") >= 1
    routes = {dict(labels).get("route", "") for name, labels in after["gateway"] if name == http}
    assert not [route for route in routes if UUID.search(route)], routes
    assert order_id not in str(routes)
    commands = "otc_engine_commands_total"
    assert moved("engine", commands, type="RequestQuote", result="ok") >= 1
    assert moved("engine", commands, type="RecordPayout", result="ok") >= 1
    assert moved("engine", commands, type="CancelOrder", result="NOT_CANCELLABLE") >= 1
    assert moved("engine", "otc_engine_batch_size_commands_count") >= 1
    for stage in ("load", "save", "queue", "reply"):
        assert moved("engine", "otc_engine_stage_duration_seconds_count", stage=stage) >= 1
    engine_lag = [labels for name, labels in after["engine"] if name == "otc_consumer_lag_messages"]
    assert engine_lag, "the engine reports no consumer lag"
    assert moved("relay", "otc_relay_events_total", type="order.paid_out") >= 1
    movements = "otc_movements_total"
    assert moved("eur-treasury", movements, party="eur-treasury", leg="debit", outcome="done") >= 1
    assert moved("usdc-chain", movements, party="usdc-chain", leg="payout", outcome="done") >= 1
    assert moved("sweeper", "otc_sweeper_expiries_sent_total") >= 1
    retried = await eventually(
        lambda: _moved_later(
            system, before, "webhooks", "otc_webhook_deliveries_total", result="retrying"
        ),
        timeout=30,
    )
    assert retried >= 1
    for process in PROCESSES - {"supervisor"}:
        assert value(after[process], "otc_dependency_up", dependency="postgresql") == 1, process
    assert value(after["supervisor"], "otc_supervisor_process_up", process="engine") == 1


async def _moved_later(
    system: System, before: dict[str, Samples], process: str, name: str, **labels: str
) -> float:
    now = await scrape(targets(system)[process])
    return value(now, name, **labels) - value(before[process], name, **labels)


async def test_the_monitor_reports_lags_dead_letters_and_the_money_checks(system: System) -> None:
    monitor = targets(system)["monitor"]
    settings = system.settings

    async def checked() -> Samples | None:
        samples = await scrape(monitor)
        ran = value(samples, "otc_check_last_run_timestamp_seconds", check="reconcile")
        return samples if ran > 0 else None

    samples = await eventually(checked, timeout=90, interval=1.0)

    assert value(samples, "otc_check_ok", check="reconcile") == 1
    assert value(samples, "otc_check_ok", check="conservation") == 1
    assert value(samples, "otc_check_mismatches") == 0
    for follower in ("relay", "projector"):
        assert ("otc_event_store_lag_events", (("follower", follower),)) in samples
        assert ("otc_event_store_lag_seconds", (("follower", follower),)) in samples
    for topic in (settings.dlq_topic, settings.events_dlq_topic):
        assert ("otc_dlq_messages", (("topic", topic),)) in samples
    assert ("otc_consumer_group_lag_messages", (("group", settings.engine_group),)) in samples


async def test_the_supervisor_counts_the_restart_of_a_process_it_brought_back(
    system: System,
) -> None:
    supervisor = targets(system)["supervisor"]
    restarts = "otc_supervisor_restarts_total"
    before = value(await scrape(supervisor), restarts, process="sweeper")
    state = read_state(system.places)
    assert state is not None
    [sweeper] = [child for child in state["children"] if child["name"] == "sweeper"]

    os.kill(sweeper["pid"], signal.SIGKILL)

    async def counted() -> float:
        return value(await scrape(supervisor), restarts, process="sweeper") - before

    assert await eventually(counted, timeout=30) == 1
    await eventually(
        lambda: _value_at(supervisor, "otc_supervisor_process_up", process="sweeper"), timeout=30
    )


async def _value_at(address: str, name: str, **labels: str) -> float:
    return value(await scrape(address), name, **labels)


async def test_one_orders_path_is_in_the_logs_from_request_to_completed(system: System) -> None:
    request_id = f"req-{uuid.uuid4().hex[:12]}"
    order_id = await a_completed_buy(system, request_id)

    def gathered() -> list[dict[str, Any]] | None:
        lines = order_lines(read_lines(system.places.logs), order_id)
        done = any("RecordPayout ok: completed" in line["message"] for line in lines)
        return lines if done and any(line["process"] == "usdc-chain" for line in lines) else None

    lines = await eventually(gathered, timeout=30)

    processes = {line["process"] for line in lines}
    assert {"gateway", "engine", "relay", "eur-treasury", "usdc-chain"} <= processes
    assert [line["ts"] for line in lines] == sorted(line["ts"] for line in lines)
    [quoted] = [line for line in lines if line["message"].startswith("RequestQuote ok")]
    assert quoted["trace_id"] == request_id
    assert quoted["order_id"] == order_id
    [asked] = [line for line in lines if line["message"].startswith("POST /otc-exchanges/quote")]
    assert asked["request_id"] == request_id
    [debited] = [
        line for line in lines if line["process"] == "eur-treasury" and "done" in line["message"]
    ]
    [confirmed] = [line for line in lines if line["message"].startswith("ConfirmQuote ok")]
    assert debited["trace_id"] == confirmed["command_id"]
    shown = CliRunner().invoke(otc, ["logs", order_id, "--logs", str(system.places.logs)])
    assert shown.exit_code == 0, shown.output
    assert "RecordPayout ok: completed" in shown.output
    assert shown.output.index("RequestQuote ok") < shown.output.index("RecordPayout ok")


def secrets_of_the_run(system: System, token: str, webhook_secret: str) -> dict[str, str]:
    settings = system.settings
    found = {"JWT": token, "webhook signing secret": webhook_secret}
    assert settings.jwt_secret is not None
    assert settings.webhook_secrets_key is not None
    found["JWT key"] = settings.jwt_secret.get_secret_value()
    found["webhook secrets key"] = settings.webhook_secrets_key.get_secret_value()
    found["PostgreSQL password"] = settings.pg_password.get_secret_value()
    demo = system.demo
    found["operator key"] = demo.operator_key
    for n, customer in enumerate(demo.customers):
        found[f"customer {n} write key"] = customer.write_key
        found[f"customer {n} read key"] = customer.read_key
    for n, iban in enumerate(IBANS):
        found[f"IBAN {n}"] = iban
    for path in (RUN / "secrets").rglob("*"):
        if path.is_file():
            found[f"secret {path.name}"] = path.read_text().strip()
    return found


async def test_no_line_of_any_process_holds_a_key_a_token_a_secret_or_an_iban(
    system: System,
) -> None:
    customer = system.demo.customers[0]
    assert system.settings.jwt_secret is not None
    token = jwt.encode(
        {"sub": customer.id, "scope": "otc-exchanges:read", "exp": int(time.time()) + 300},
        system.settings.jwt_secret.get_secret_value(),
        algorithm="HS256",
    )
    async with system.client(Authorization=f"Bearer {token}") as client:
        assert (await client.get("/otc-exchanges/accounts")).status_code == 200
    async with system.client(customer.write_key + "x") as client:
        assert (await client.get("/otc-exchanges")).status_code == 401
    endpoint = await a_webhook_endpoint_that_never_answers(system)
    await a_completed_buy(system, f"req-{uuid.uuid4().hex[:12]}")
    logs: list[Path] = [*system.places.logs.glob("*.log"), system.supervisor_log]

    leaks = secrets_in(logs, secrets_of_the_run(system, token, endpoint["secret"]))

    assert len(logs) > len(PROCESSES)
    assert leaks == []
