"""The one place Kafka clients are made: producers, consumers, admin clients and FastStream
brokers, each from `Settings` and authenticated as the process's own principal.

Every client authenticates (`kafka_security_protocol`, `kafka_sasl_mechanism`, `kafka_username`,
`kafka_password`); the broker refuses anything else and lets each principal do only what
`services/kafka_acls.py` grants it. Every producer, a FastStream broker's included, is idempotent
with `acks="all"` (DESIGN.md section 5). Nothing connects here: callers start what they get.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLScram256, SASLScram512

from services.settings import Settings


class KafkaCredentialsMissingError(RuntimeError):
    """The process was given no Kafka principal: it would be refused, so it does not try."""


def credentials(settings: Settings) -> tuple[str, str]:
    if settings.kafka_username is None or settings.kafka_password is None:
        raise KafkaCredentialsMissingError(
            "set OTC_KAFKA_USERNAME and OTC_KAFKA_PASSWORD (for the local stack: "
            "`source .run/stack.env`, or deploy/local/run, which gives each process its own)"
        )
    return settings.kafka_username, settings.kafka_password.get_secret_value()


def connection(settings: Settings) -> dict[str, Any]:
    """The keyword arguments every aiokafka client takes to reach and authenticate."""
    username, password = credentials(settings)
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
        "sasl_mechanism": settings.kafka_sasl_mechanism,
        "sasl_plain_username": username,
        "sasl_plain_password": password,
    }
    if settings.kafka_security_protocol == "SASL_SSL":
        options["ssl_context"] = create_ssl_context()
    return options


def producer(settings: Settings, *, client_id: str, **options: object) -> AIOKafkaProducer:
    """An idempotent producer with `acks="all"`; `options` add to (or override) those.

    Tuned for latency: every producer here is on some request's path (a command, a reply, an
    event a worker waits for), so none lingers (`linger_ms=0`): a message leaves at once, and
    batches still form by themselves, since aiokafka keeps one request in flight per broker and
    what is sent meanwhile (a batch's replies, a page of events) goes together in the next."""
    defaults: dict[str, object] = {"enable_idempotence": True, "acks": "all", "linger_ms": 0}
    return AIOKafkaProducer(**connection(settings), client_id=client_id, **(defaults | options))


BATCH_WAIT_MS = 5
"""`batch_timeout_ms` of every FastStream batch subscriber. FastStream waits that long for a
record in an empty buffer and, finding none, then sleeps as long again without looking: a
record arriving in that sleep waits for it. 20 ms cost a command 10 ms on average at a quiet
moment (the engine's latency at half its rate was worse than at full load); 5 ms costs 2.5 ms
and, idle, about 100 empty polls a second."""


FETCH_WAIT_MS = 20
"""`fetch_max_wait_ms` of the engine's subscriber, not aiokafka's 500. aiokafka keeps one fetch
in flight per broker and leaves out of it every partition whose records are still buffered: a
record arriving on such a partition once its buffer is taken waits for the fetch in flight to
return, which it does only when one of ITS partitions has data, or after this wait. At full load
some partition always has data; at half the rate a command waited up to the whole 500 ms
(`otc bench engine`: the queue stage at half rate p99 362 -> 75 ms, per command p99 402 -> 106
ms). Idle, an engine asks the broker 50 times a second."""


def consumer(
    settings: Settings, *topics: str, client_id: str, **options: object
) -> AIOKafkaConsumer:
    """A consumer. Its fetches wait at the broker for at most `fetch_max_wait_ms` (500) but
    only while there is nothing: with `fetch_min_bytes=1` (the default) a fetch returns the
    moment a record arrives on one of the partitions it asked for (but see `FETCH_WAIT_MS`, and
    FastStream's batch wait, `BATCH_WAIT_MS`)."""
    return AIOKafkaConsumer(*topics, **connection(settings), client_id=client_id, **options)


def admin(settings: Settings, *, client_id: str, **options: object) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**connection(settings), client_id=client_id, **options)


def security(settings: Settings) -> BaseSecurity:
    """The same credentials in FastStream's terms (they also describe the AsyncAPI servers)."""
    username, password = credentials(settings)
    scram = SASLScram512 if settings.kafka_sasl_mechanism == "SCRAM-SHA-512" else SASLScram256
    if settings.kafka_security_protocol == "SASL_SSL":
        return scram(username, password, ssl_context=create_ssl_context())
    return scram(username, password)


def broker(settings: Settings, *, client_id: str, log_level: int = logging.INFO) -> KafkaBroker:
    """A FastStream broker; its publishers are idempotent with `acks="all"`. Its subscribers do
    not try to create their topics: deployment makes them, and no process may."""
    return KafkaBroker(
        settings.kafka_bootstrap,
        client_id=client_id,
        security=security(settings),
        enable_idempotence=True,
        acks="all",
        allow_auto_create_topics=False,
        log_level=log_level,
    )
