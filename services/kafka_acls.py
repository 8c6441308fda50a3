"""Who may do what on Kafka: one principal per process kind, and the one table of the topics each
may read and write and the consumer groups it may consume as.

The broker refuses everything this table does not grant (`allow.everyone.if.no.acl.found=false`).
`deploy/local/up` creates the principals (SCRAM, passwords generated into `.run/secrets/kafka/`)
and these ACLs for the configured topic and group names; `deploy/local/run` starts each process
as its principal. Kafka's implications keep the table short: READ and WRITE on a topic imply
DESCRIBE, READ on a group implies DESCRIBE, and an idempotent producer needs WRITE on some topic
for its producer id (not IDEMPOTENT_WRITE on the cluster, since Kafka 3.0). DESCRIBE alone lets a
principal see offsets, never records: the gateway's `/ready` reads the consumer groups' lag.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from services.settings import Settings


class Principal(StrEnum):
    """A process kind's Kafka user. The projector reads only the event store: it has none."""

    GATEWAY = "gateway"
    ENGINE = "engine"
    RELAY = "relay"
    SWEEPER = "sweeper"
    EUR_TREASURY = "eur-treasury"
    USDC_CHAIN = "usdc-chain"
    WEBHOOKS = "webhooks"
    MONITOR = "monitor"
    """Samples lags and dead letters for the metrics: offsets only, never a record."""
    OPERATOR = "operator"
    """People at the `otc` command line: commands, audit republish, dead-letter list and replay."""


ADMIN = "admin"
"""Super user of the local stack: `deploy/local/up` and the tests' admin fixtures (topics)."""
BROKER = "broker"
"""The broker's own identity, to itself and to its controller. Super user."""
REPLAY_GROUP = "otc-dlq-replay"
"""`otc dlq replay` records how far it got as `<this>.<dead-letter topic>` (the operator's)."""


@dataclass(frozen=True)
class Access:
    reads: tuple[str, ...] = ()
    """Topics it consumes."""
    writes: tuple[str, ...] = ()
    """Topics it produces to."""
    groups: tuple[str, ...] = ()
    """Consumer groups it consumes as (a client that assigns partitions itself needs none)."""
    group_prefixes: tuple[str, ...] = ()
    """Consumer groups whose names start with one of these."""
    watches: tuple[str, ...] = ()
    """Topics whose offsets it may read, not their records."""
    watches_groups: tuple[str, ...] = ()
    """Consumer groups whose committed offsets it may read, without consuming as them."""


def access(settings: Settings) -> dict[Principal, Access]:
    """The table, for the topic and group names of `settings`."""
    s = settings

    def worker(group: str) -> Access:
        return Access(
            reads=(s.events_topic,), groups=(group,), writes=(s.commands_topic, s.events_dlq_topic)
        )

    return {
        # Replies are read by partition assignment, filtered by `reply_to`: no group. `/ready`
        # reports how far the engine and the workers are behind on their topics.
        Principal.GATEWAY: Access(
            writes=(s.commands_topic,),
            reads=(s.replies_topic,),
            watches=(s.commands_topic, s.events_topic),
            watches_groups=(s.engine_group, s.eur_worker_group, s.chain_worker_group),
        ),
        Principal.ENGINE: Access(
            reads=(s.commands_topic,),
            groups=(s.engine_group,),
            writes=(s.replies_topic, s.dlq_topic),
        ),
        Principal.RELAY: Access(writes=(s.events_topic,)),
        Principal.SWEEPER: Access(writes=(s.commands_topic,)),
        Principal.EUR_TREASURY: worker(s.eur_worker_group),
        Principal.USDC_CHAIN: worker(s.chain_worker_group),
        Principal.WEBHOOKS: Access(
            reads=(s.events_topic,), groups=(s.webhook_group,), writes=(s.events_dlq_topic,)
        ),
        # Lags and the dead letters not replayed yet, for the metrics (services/monitor/).
        Principal.MONITOR: Access(
            watches=(s.commands_topic, s.events_topic, s.dlq_topic, s.events_dlq_topic),
            watches_groups=(
                s.engine_group,
                s.eur_worker_group,
                s.chain_worker_group,
                s.webhook_group,
                f"{REPLAY_GROUP}.{s.dlq_topic}",
                f"{REPLAY_GROUP}.{s.events_dlq_topic}",
            ),
        ),
        # Audit republish and the replay of dead letters write where the relay and the
        # producers of commands do; `otc command` waits for its reply.
        Principal.OPERATOR: Access(
            reads=(s.replies_topic, s.dlq_topic, s.events_dlq_topic),
            writes=(s.commands_topic, s.events_topic),
            group_prefixes=(f"{REPLAY_GROUP}.",),
        ),
    }


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW binding, in the names of Kafka's Admin API (any host)."""

    principal: str
    resource: str
    pattern: str
    name: str
    operation: str


def grants(settings: Settings) -> list[Grant]:
    found: set[Grant] = set()
    for principal, what in access(settings).items():
        user = f"User:{principal}"
        found.update(Grant(user, "TOPIC", "LITERAL", topic, "READ") for topic in what.reads)
        found.update(Grant(user, "TOPIC", "LITERAL", topic, "WRITE") for topic in what.writes)
        found.update(Grant(user, "GROUP", "LITERAL", group, "READ") for group in what.groups)
        found.update(Grant(user, "GROUP", "PREFIXED", p, "READ") for p in what.group_prefixes)
        found.update(Grant(user, "TOPIC", "LITERAL", topic, "DESCRIBE") for topic in what.watches)
        found.update(
            Grant(user, "GROUP", "LITERAL", group, "DESCRIBE") for group in what.watches_groups
        )
    return sorted(found)


def system_grants() -> set[Grant]:
    """The grants for the default topic and group names: the system's own, whatever the
    environment says (tests that grant and revoke for names of their own leave these alone)."""
    return set(grants(Settings.model_construct()))


def password_file(run_dir: Path, user: str) -> Path:
    """Where the local stack keeps a Kafka user's generated password (mode 600)."""
    return run_dir / "secrets" / "kafka" / user
