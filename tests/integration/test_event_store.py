"""The event store is eventsourcing's PostgreSQL persistence module on the local cluster."""

from __future__ import annotations

from uuid import UUID

import psycopg
import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from services.settings import Settings

pytestmark = pytest.mark.integration


class Counter(Aggregate):
    @event("Created")
    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0

    @event("Incremented")
    def increment(self, by: int) -> None:
        self.count += by


class Counters(Application[UUID]):
    def open(self, name: str) -> UUID:
        counter = Counter(name)
        self.save(counter)
        return counter.id

    def increment(self, counter_id: UUID, by: int) -> None:
        counter: Counter = self.repository.get(counter_id)
        counter.increment(by)
        self.save(counter)


def make_app(settings: Settings) -> Counters:
    return Counters(env={**settings.postgres_env(), "CREATE_TABLE": "y"})


def test_application_state_survives_a_new_application_instance(settings: Settings) -> None:
    writer = make_app(settings)
    counter_id = writer.open("orders")
    writer.increment(counter_id, 2)
    writer.increment(counter_id, 3)
    writer.close()

    reader = make_app(settings)
    counter: Counter = reader.repository.get(counter_id)
    notifications = reader.notification_log.select(start=1, limit=10)
    reader.close()

    assert (counter.name, counter.count, counter.version) == ("orders", 5, 3)
    assert [n.topic.rsplit(".", 1)[-1] for n in notifications] == [
        "Created",
        "Incremented",
        "Incremented",
    ]


def test_events_are_rows_in_postgresql(settings: Settings) -> None:
    app = make_app(settings)
    counter_id = app.open("rows")
    app.increment(counter_id, 1)
    app.close()

    with psycopg.connect(settings.conninfo()) as conn:
        row = conn.execute(
            "SELECT count(*), max(originator_version) FROM counters_events"
            " WHERE originator_id = %s",
            (counter_id,),
        ).fetchone()

    assert row == (2, 2)
