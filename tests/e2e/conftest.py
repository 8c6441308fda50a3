"""The whole system for end-to-end tests: `python -m services.local.supervisor` as a subprocess (it
starts the sandboxes, engine, relay, sweeper, projector, workers and gateway, each a process of
its own) on a database, topics, consumer groups and ports of this test session's own."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from aiokafka.admin import NewTopic
from psycopg import sql
from pydantic import SecretStr

from services import kafka
from services.local.demo import DemoData, load_demo
from services.local.places import Places, read_state
from services.settings import Settings
from services.webhooks.signing import new_box_key
from tests.conftest import drop_database, unique_name
from tests.infra import kill_quietly
from tests.support import LOGS, Process, acls_granted

QUOTE_TTL_SECONDS = 8
DUAL_CONTROL_EUR = Decimal("5000.00")
"""Orders from this EUR value need two operators (lower than the default, to test it cheaply)."""
WEBHOOK_RETRY_SCHEDULE = [0.5, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0]
"""Svix's schedule shrunk to about 16 s, so that a receiver down for a few seconds is retried."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Recorder:
    """Every response body the tests saw, to scan for identifiers that must stay server-side."""

    bodies: list[str] = field(default_factory=list)

    async def __call__(self, response: httpx.Response) -> None:
        await response.aread()
        self.bodies.append(response.text)


@dataclass
class System:
    settings: Settings
    base_url: str
    demo: DemoData
    recorder: Recorder
    places: Places
    """The supervisor's state: its children's logs and where their metrics are."""
    supervisor_log: Path

    def client(self, key: str | None = None, **headers: str) -> httpx.AsyncClient:
        if key is not None:
            headers["x-api-key"] = key
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=30,
            event_hooks={"response": [self.recorder]},
        )

    async def wait_status(
        self, client: httpx.AsyncClient, order_id: str, *statuses: str
    ) -> dict[str, Any]:
        for _ in range(300):
            response = await client.get(f"/otc-exchanges/{order_id}")
            body: dict[str, Any] = response.json()
            if response.status_code == httpx.codes.OK and body["status"] in statuses:
                return body
            await asyncio.sleep(0.2)
        raise AssertionError(f"order {order_id} never reached {statuses}: {body}")


@asynccontextmanager
async def system_settings(stack_settings: Settings, prefix: str) -> AsyncIterator[Settings]:
    """Settings for a whole system of its own: a database, topics, consumer groups and ports,
    with the ACLs of services/kafka_acls.py granted for them (each process runs as its Kafka
    principal); the database and topics are removed and the ACLs revoked afterwards."""
    database = unique_name(prefix).replace("-", "_")
    with psycopg.connect(stack_settings.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    topics = {
        "commands_topic": unique_name(f"{prefix}-commands"),
        "replies_topic": unique_name(f"{prefix}-replies"),
        "events_topic": unique_name(f"{prefix}-events"),
        "dlq_topic": unique_name(f"{prefix}-dlq"),
        "events_dlq_topic": unique_name(f"{prefix}-events-dlq"),
    }
    admin = kafka.admin(stack_settings, client_id="otc-tests")
    await admin.start()
    await admin.create_topics([NewTopic(name, 3, 1) for name in topics.values()])
    ports = {name: free_port() for name in ("provider", "bank", "chain", "gateway")}
    settings = stack_settings.model_copy(
        update={
            **topics,
            "pg_dbname": database,
            "engine_group": unique_name(f"{prefix}-engine"),
            "eur_worker_group": unique_name(f"{prefix}-eur"),
            "chain_worker_group": unique_name(f"{prefix}-chain"),
            "provider_url": f"http://127.0.0.1:{ports['provider']}",
            "bank_url": f"http://127.0.0.1:{ports['bank']}",
            "chain_url": f"http://127.0.0.1:{ports['chain']}",
            "gateway_port": ports["gateway"],
            "metrics_base_port": free_port(),
            "quote_ttl_seconds": QUOTE_TTL_SECONDS,
            "dual_control_eur": DUAL_CONTROL_EUR,
            "upstreams": "sandbox",
            "jwt_secret": SecretStr(secrets.token_urlsafe(48)),
            "webhook_group": unique_name(f"{prefix}-webhooks"),
            "webhook_secrets_key": SecretStr(new_box_key()),
            "webhook_allow_loopback": True,
            "webhook_retry_schedule_seconds": WEBHOOK_RETRY_SCHEDULE,
            "webhook_timeout_seconds": 3.0,
            "webhook_poll_seconds": 0.1,
        },
    )
    try:
        with acls_granted(settings):
            yield settings
    finally:
        await admin.delete_topics(list(topics.values()))
        await admin.close()
        drop_database(stack_settings, database)


@pytest.fixture(scope="session")
async def system(stack_settings: Settings) -> AsyncIterator[System]:
    async with system_settings(stack_settings, "e2e") as settings:
        state = LOGS / unique_name("e2e-system")
        supervisor = Process(
            "services.local.supervisor",
            settings,
            "--no-demo",
            "--state-dir",
            str(state),
            name="supervisor",
        )
        supervisor.start()
        try:
            supervisor.wait_for_log("running:", timeout=120)
            demo = await load_demo(settings)
            yield System(
                settings,
                f"http://127.0.0.1:{settings.gateway_port}",
                demo,
                Recorder(),
                Places(state),
                supervisor.log_path,
            )
        finally:
            supervisor.stop()
            leftovers = read_state(Places(state))
            for child in leftovers["children"] if leftovers is not None else ():
                if child["pid"] is not None:
                    kill_quietly(child["pid"])


def server_side_identifiers(settings: Settings) -> set[str]:
    """Provider quote ids, bank references and transaction hashes of every order so far."""
    with psycopg.connect(settings.conninfo()) as conn:
        rows = conn.execute("SELECT convert_from(state, 'UTF8') FROM orders_events").fetchall()
    found: set[str] = set()
    for (state,) in rows:
        data = json.loads(state)
        for name in ("provider_quote_id", "reference"):
            value = data.get(name)
            if isinstance(value, str) and len(value) >= 8:
                found.add(value)
    return found


def new_key() -> str:
    return str(uuid.uuid4())


__all__ = [
    "DUAL_CONTROL_EUR",
    "QUOTE_TTL_SECONDS",
    "Path",
    "System",
    "new_key",
    "server_side_identifiers",
]
