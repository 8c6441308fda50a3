"""The metrics of services/metrics.py: named and documented as Prometheus wants, each family
exposed by the processes that fill it, consumer lag read off the consumer."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiokafka import TopicPartition
from prometheus_client.metrics import MetricWrapperBase

from services import metrics
from tests.metric_values import value_of

FAMILIES = {
    name: value for name, value in vars(metrics).items() if isinstance(value, MetricWrapperBase)
}
UNITS = re.compile(r"_(total|seconds|timestamp_seconds|messages|events|commands|ok|up|mismatches)$")


def test_every_metric_is_an_otc_one_with_its_unit_last_and_a_description() -> None:
    for family in FAMILIES.values():
        [described] = family.describe()
        name = f"{described.name}_total" if described.type == "counter" else described.name
        assert name.startswith("otc_"), name
        assert UNITS.search(name), f"{name}: no unit at the end"
        assert len(described.documentation) > 30, f"{name}: say what it counts"


def test_every_metric_is_exposed_by_some_process() -> None:
    exposed = {
        id(family)
        for families in (
            metrics.GATEWAY,
            metrics.ENGINE,
            metrics.RELAY,
            metrics.PROJECTOR,
            metrics.SWEEPER,
            metrics.WORKER,
            metrics.WEBHOOKS,
            metrics.MONITOR,
            metrics.SUPERVISOR,
        )
        for family in families
    }

    assert {name for name, family in FAMILIES.items() if id(family) not in exposed} == set()


def test_a_label_child_is_made_once_and_kept() -> None:
    children = metrics.Children(metrics.ENGINE_COMMANDS)

    assert children.get("Tested", "ok") is children.get("Tested", "ok")
    children.get("Tested", "ok").inc()
    assert value_of(metrics.ENGINE_COMMANDS, type="Tested", result="ok") == 1


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int


class Consumer:
    def __init__(self, marks: dict[TopicPartition, int]) -> None:
        self.marks = marks

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.marks.get(tp)


def test_consumer_lag_is_the_high_watermark_after_the_batchs_last_record_per_partition() -> None:
    consumer = Consumer({TopicPartition("t", 0): 10, TopicPartition("t", 1): 5})
    records = [Record("t", 0, 3), Record("t", 0, 6), Record("t", 1, 4)]

    metrics.consumer_lag("g-lag", consumer, records)

    assert value_of(metrics.CONSUMER_LAG, group="g-lag", topic="t", partition="0") == 3
    assert value_of(metrics.CONSUMER_LAG, group="g-lag", topic="t", partition="1") == 0


def test_a_consumer_without_a_high_watermark_records_no_lag() -> None:
    metrics.consumer_lag("g-none", object(), [Record("t", 0, 3)])

    assert value_of(metrics.CONSUMER_LAG, group="g-none", topic="t", partition="0") == 0
