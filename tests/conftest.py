"""Fixtures shared by the integration and end-to-end tests.

The stack is brought up by `deploy/local/up` (idempotent: it reuses a running stack). Each test
gets isolated state: a database of its own and topics or consumer groups with unique names.

Tests talk to Kafka as its `admin` (a super user): they make topics of their own and run processes
on them. Tests of the ACLs themselves (tests/integration/test_kafka_acls.py) and the end-to-end
system run the real principals, with the ACLs of services/kafka_acls.py granted for their names.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from aiokafka.admin import NewTopic
from psycopg import sql
from pydantic import SecretStr

from services import kafka
from services.kafka_acls import ADMIN, password_file
from services.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
ENV_FILE = ROOT / ".run" / "stack.env"

TopicFactory = Callable[..., Awaitable[str]]


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def read_env_file(path: Path) -> dict[str, str]:
    pattern = re.compile(r"^export (OTC_[A-Z_]+)=(.*)$")
    found = (pattern.match(line) for line in path.read_text().splitlines())
    return {m.group(1): m.group(2) for m in found if m is not None}


def as_kafka_user(settings: Settings, user: str) -> Settings:
    """`settings` authenticated to Kafka as `user`, with the password the local stack made."""
    password = password_file(ROOT / ".run", user).read_text().strip()
    return settings.model_copy(
        update={"kafka_username": user, "kafka_password": SecretStr(password)}
    )


@pytest.fixture(scope="session")
def stack_settings() -> Settings:
    """Settings of the running local stack, as the Kafka admin; starts the stack first when the
    environment names none."""
    if "OTC_PG_PASSWORD" not in os.environ:
        subprocess.run([str(ROOT / "deploy" / "local" / "up")], check=True)  # noqa: S603 - our own script
        os.environ.update(read_env_file(ENV_FILE))
    return as_kafka_user(Settings(), ADMIN)


@pytest.fixture
def settings(stack_settings: Settings) -> Iterator[Settings]:
    """Settings pointing at a fresh database of this test's own, dropped afterwards."""
    name = unique_name("test").replace("-", "_")
    with psycopg.connect(stack_settings.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield stack_settings.model_copy(update={"pg_dbname": name})
    drop_database(stack_settings, name)


def drop_database(settings: Settings, name: str) -> None:
    """Drop a test database; an autovacuum worker busy in it may delay that a moment."""
    for attempt in range(10):
        try:
            with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        except psycopg.errors.InsufficientPrivilege:
            time.sleep(0.2 * (attempt + 1))
        else:
            return
    warnings.warn(f"test database {name} could not be dropped", stacklevel=2)


@pytest.fixture
async def new_topic(stack_settings: Settings) -> AsyncIterator[TopicFactory]:
    """Creates topics with unique names for this test and deletes them afterwards."""
    admin = kafka.admin(stack_settings, client_id="otc-tests")
    await admin.start()
    created: list[str] = []

    async def create(prefix: str = "t", partitions: int = 1) -> str:
        name = unique_name(prefix)
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        created.append(name)
        return name

    try:
        yield create
    finally:
        if created:
            await admin.delete_topics(created)
        await admin.close()


@pytest.fixture
async def otc_settings(settings: Settings, new_topic: TopicFactory) -> Settings:
    """A database and the four topics of DESIGN.md section 5, all of this test's own."""
    return settings.model_copy(
        update={
            "commands_topic": await new_topic("commands", partitions=3),
            "replies_topic": await new_topic("replies", partitions=3),
            "events_topic": await new_topic("events", partitions=3),
            "dlq_topic": await new_topic("dlq"),
            "events_dlq_topic": await new_topic("events-dlq"),
            "engine_group": unique_name("engine"),
            "upstreams": "fake",
        },
    )
