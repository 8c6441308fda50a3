"""The engine: a batch of commands from `otc.commands` to the event store, and the replies.

`EngineService.subscribe` puts it on a broker. Each batch goes through four steps:
(1) parse: a record that does not parse is dead-lettered and its sender told; (2) load, in a
thread, every order and idempotency key the batch names, in one query; (3) ask the outside world,
concurrently, for what the decisions need (services/engine/lookups.py; most commands need
nothing); (4) decide every command in order with its entry in the command table
(services/engine/handlers.py) against the in-memory aggregates, save all their new events in ONE
transaction, and reply. eventsourcing takes a table lock per save, so one save per batch instead
of one per command is what makes it fast.

Ack semantics: the batch's offsets are committed only after its events are saved and its
replies acknowledged by the broker. An infrastructure failure raises out of `handle`: the batch
is redelivered, which is harmless because every command is idempotent. If the batch save
conflicts (another writer touched one of its aggregates), the batch is redone one command at a
time, each with its own save; a command that keeps failing for a reason of its own is
dead-lettered and its sender gets an error reply. Replies are built only from what was saved,
so nothing is answered before it is durable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import RecordConflictError
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy
from pydantic import ValidationError

from domain import commands as c
from domain.errors import DomainError, ErrorCode
from domain.idempotency import IdempotencyKey, key_id
from domain.order import Order
from services import kafka
from services.adapters.ports import PricingPort, WalletBalancePort
from services.batches import header, record_values, records_of
from services.contracts import (
    CORRELATION_ID,
    REPLY_TO,
    CommandEnvelope,
    ErrorBody,
    ReceivedCommand,
    ReplyEnvelope,
    Unparseable,
)
from services.dead_letters import KafkaRecord, dead_letter_headers, summarise
from services.engine import telemetry
from services.engine.event_store import Orders
from services.engine.handlers import COMMANDS, Batch, Policy, Result, Workspace, decide
from services.engine.lookups import Inputs, Lookout
from services.offsets import InOrderCommits
from services.resilience import INFRASTRUCTURE_ERRORS, Backoff, Outages, consume_batch
from services.resources.port import ResourceDirectory
from services.timings import ENGINE_TIMING, Stages, engine_timing, now_ms

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
MAX_CONFLICT_RETRIES = 5

Received = tuple[Any, CommandEnvelope | Unparseable]
"""An aiokafka record (untyped) and its value, parsed (services/batches.py)."""

Answer = tuple[ReplyEnvelope, Stages]
"""A reply and the stages of the batch that decided it (services/timings.py)."""

Send = Callable[[str, bytes, bytes | None, dict[str, str]], Awaitable[Awaitable[Any]]]
"""`send(topic, value, key, headers)` enqueues a message and returns its delivery."""


@dataclass(frozen=True)
class Incoming:
    command: c.Command
    record: Any
    reply_to: str | None
    correlation_id: str | None


Indexed = list[tuple[int, c.Command]]
"""Commands with their place in the batch (a redelivered duplicate may share a command id)."""


def dependent_cut(commands: Indexed) -> tuple[Indexed, Indexed]:
    """The longest head of `commands` in which no command that needs outside lookups follows
    another command of its own order, and the rest."""
    seen: set[UUID] = set()
    for index, (_, command) in enumerate(commands):
        if index and COMMANDS[type(command)].looks_outside and command.order_id in seen:
            return commands[:index], commands[index:]
        seen.add(command.order_id)
    return commands, []


def quick_and_slow(commands: Indexed) -> tuple[Indexed, Indexed]:
    """The commands that need nothing from outside (a confirm, a cancel, a worker's outcome)
    and those that do, with every command of an order that has one of the latter; the two
    name different orders, so neither waits for the other's provider or chain call."""
    slow_orders: set[UUID] = set()
    quick: Indexed = []
    slow: Indexed = []
    for index, command in commands:
        if COMMANDS[type(command)].looks_outside or command.order_id in slow_orders:
            slow.append((index, command))
            slow_orders.add(command.order_id)
        else:
            quick.append((index, command))
    return quick, slow


Ready = Callable[[list[tuple[int, "Answer"]]], Awaitable[None]]
"""Called with the answers of part of a batch as soon as they are saved, by their places."""


class CommandProcessor:
    """Steps 2 to 4 of a batch: load, look outside, decide and save."""

    def __init__(  # noqa: PLR0913 - the engine's collaborators
        self,
        orders: Orders,
        *,
        pricing: PricingPort,
        balances: WalletBalancePort,
        resources: ResourceDirectory,
        policy: Policy,
        clock: Callable[[], datetime],
        lookup_deadline_seconds: float = 6.0,
    ) -> None:
        self.orders = orders
        self.lookout = Lookout(
            pricing, balances, resources, deadline_seconds=lookup_deadline_seconds
        )
        self.policy = policy
        self.clock = clock

    async def process(self, commands: Sequence[c.Command]) -> list[ReplyEnvelope]:
        """Replies to every command, in order. Raises only on infrastructure failure."""
        return [reply for reply, _ in await self.process_timed(commands)]

    async def process_timed(
        self, commands: Sequence[c.Command], ready: Ready | None = None
    ) -> list[Answer]:
        """`process`, each reply with the stages of the batch that decided it; `ready` hears
        of each part of the batch as soon as it is saved.

        A command whose outside lookups depend on its order (a requote's or an approval's
        price) cannot have them made before an earlier command of the same batch has changed
        or created that order: the batch is cut there, and the rest follows as a batch of its
        own, in order. Within a cut, the commands that need nothing from outside are decided
        and saved while the others' lookups are under way."""
        answers: dict[int, Answer] = {}

        async def done(part: list[tuple[int, Answer]]) -> None:
            answers.update(part)
            if ready is not None:
                await ready(part)

        rest: Indexed = list(enumerate(commands))
        while rest:
            head, rest = dependent_cut(rest)
            quick, slow = quick_and_slow(head)
            if not quick or not slow:
                await done(await self._process_batch(head))
                continue
            prepared = asyncio.create_task(self._prepare(slow))
            try:
                await done(await self._process_batch(quick))
            except BaseException:
                prepared.cancel()
                raise
            await done(await self._commit(slow, *await prepared))
        return [answers[index] for index in range(len(commands))]

    async def _process_batch(self, commands: Indexed) -> list[tuple[int, Answer]]:
        return await self._commit(commands, *await self._prepare(commands))

    async def _prepare(self, commands: Indexed) -> tuple[Workspace, Inputs, Stages]:
        """Load the batch's aggregates and ask the outside world for what it needs."""
        started = time.perf_counter()
        only = [command for _, command in commands]
        workspace = await asyncio.to_thread(self._load, only)
        loaded = time.perf_counter()
        inputs = await self._look_outside(only, workspace)
        stages = Stages(
            load=(loaded - started) * 1000,
            outside=(time.perf_counter() - loaded) * 1000,
            batch=len(commands),
        )
        return workspace, inputs, stages

    async def _commit(
        self, commands: Indexed, workspace: Workspace, inputs: Inputs, stages: Stages
    ) -> list[tuple[int, Answer]]:
        """Decide and save the batch in one transaction; one command at a time on a conflict."""
        started = time.perf_counter()
        only = [command for _, command in commands]
        try:
            replies = await asyncio.to_thread(self._decide_and_save, only, workspace, inputs)
        except RecordConflictError:
            log.warning("batch of %d conflicted; redoing it one command at a time", len(commands))
        else:
            saved = replace(stages, save=(time.perf_counter() - started) * 1000)
            telemetry.batch_saved(saved)
            return [
                (index, (reply, saved)) for (index, _), reply in zip(commands, replies, strict=True)
            ]
        one_by_one: list[tuple[int, Answer]] = []
        for index, command in commands:
            [reply] = await self.process_one(command, inputs)
            one_by_one.append((index, (reply, Stages())))
        return one_by_one

    async def process_one(
        self, command: c.Command, inputs: Inputs | None = None
    ) -> list[ReplyEnvelope]:
        """One command with its own load and save, retried on conflicts."""
        for attempt in range(1, MAX_CONFLICT_RETRIES + 1):
            workspace = await asyncio.to_thread(self._load, [command])
            if inputs is None:
                inputs = await self._look_outside([command], workspace)
            try:
                return await asyncio.to_thread(self._decide_and_save, [command], workspace, inputs)
            except RecordConflictError:
                log.warning("command %s conflicted (attempt %d)", command.command_id, attempt)
                await asyncio.sleep(0.05 * attempt)
        raise RecordConflictError(f"command {command.command_id} kept conflicting")

    def _load(self, commands: Sequence[c.Command]) -> Workspace:
        key_ids = [
            key_id(cmd.customer_id, cmd.idempotency_key) for cmd in commands if cmd.idempotency_key
        ]
        loaded = self.orders.load_many([*(cmd.order_id for cmd in commands), *key_ids])
        return Workspace(
            orders={i: a for i, a in loaded.items() if isinstance(a, Order)},
            keys={i: a for i, a in loaded.items() if isinstance(a, IdempotencyKey)},
        )

    async def _look_outside(self, commands: Sequence[c.Command], ws: Workspace) -> Inputs:
        """What the batch's unanswered commands need, as their table entries say."""
        limits = self.policy.limits
        return await self.lookout.gather(
            (cmd.command_id, COMMANDS[type(cmd)].needs(ws.orders.get(cmd.order_id), cmd, limits))
            for cmd in commands
            if not ws.answered(cmd)
        )

    def _decide_and_save(
        self, commands: Sequence[c.Command], ws: Workspace, inputs: Inputs
    ) -> list[ReplyEnvelope]:
        batch = Batch(ws, inputs, self.policy, self.clock(), self._history)
        results = [decide(cmd, batch) for cmd in commands]
        touched = list(batch.touched.values())
        recordings = self.orders.save_all(touched) if touched else []
        positions = {
            (r.domain_event.originator_id, r.domain_event.originator_version): r.notification.id
            for r in recordings
        }
        return [self._reply(result, positions) for result in results]

    def _history(self, order_id: UUID, version: int) -> Order | None:
        return self.orders.order(order_id, version=version)

    def _reply(self, result: Result, positions: dict[tuple[UUID, int], int]) -> ReplyEnvelope:
        command_id = result.command.command_id
        if result.stored_reply is not None:
            stored = result.stored_reply
            order, version, error = stored.get("order"), stored.get("version"), stored["error"]
            position = None
            if stored["ok"] and order is not None and version is not None:
                position = self.orders.position_of(UUID(order["id"]), int(version))
            return ReplyEnvelope(
                command_id=command_id,
                ok=bool(stored["ok"]),
                order=order,
                error=None if error is None else ErrorBody.model_validate(error),
                position=position,
                replayed=True,
            )
        if result.error is not None:
            return ReplyEnvelope(command_id=command_id, ok=False, error=ErrorBody.of(result.error))
        assert result.view is not None  # noqa: S101 - a result is a view or an error
        assert result.version is not None  # noqa: S101
        key = (result.view.id, result.version)
        position = positions.get(key) or self.orders.position_of(*key)
        return ReplyEnvelope(
            command_id=command_id, ok=True, order=result.view.public_json(), position=position
        )


class EngineService:
    """Step 1 and the replies: the engine's Kafka side around a `CommandProcessor`."""

    def __init__(
        self, processor: CommandProcessor, send: Send, *, replies_topic: str, dlq_topic: str
    ) -> None:
        self.processor = processor
        self.send = send
        self.replies_topic = replies_topic
        self.dlq_topic = dlq_topic
        self.commits = InOrderCommits()

    def subscribe(  # noqa: PLR0913 - where and how to consume
        self,
        broker: KafkaBroker,
        topic: str,
        *,
        group_id: str,
        max_records: int,
        outages: Outages,
        backoff: Backoff,
    ) -> None:
        @broker.subscriber(
            topic,
            group_id=group_id,
            batch=True,
            max_records=max_records,
            batch_timeout_ms=kafka.BATCH_WAIT_MS,
            fetch_max_wait_ms=kafka.FETCH_WAIT_MS,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,  # services/offsets.py commits
            parser=without_reply_to,
            decoder=record_values,
            title="on_commands",
            description="The engine: any number of instances in one consumer group; a batch "
            "is committed once its events are saved and its replies delivered, while the next "
            "batch is worked on.",
        )
        async def on_commands(commands: list[ReceivedCommand], msg: KafkaMessage) -> None:
            # The raw records too: a command that does not parse is dead-lettered as its own
            # bytes with its offset, and a reply goes under its record's key to `reply_to`.
            records = records_of(msg)
            batch = list(zip(records, commands, strict=True))
            await consume_batch(self._pipelined(batch, msg.consumer), outages, backoff)
            telemetry.consumed(group_id, msg.consumer, records)

    async def handle(self, batch: Sequence[Received]) -> None:
        """One batch, its replies delivered."""
        await asyncio.gather(*await self._run(batch))

    async def _pipelined(self, batch: Sequence[Received], consumer: object) -> None:
        """One batch, its offsets committed behind its replies (services/offsets.py) while the
        next batch is worked on; anything raised rewinds what is not committed, to come again."""
        records = [record for record, _ in batch]
        broken = self.commits.broken
        if broken is not None:
            await self.commits.rewind(consumer, records)
            raise broken
        try:
            deliveries = await self._run(batch)
        except BaseException:
            await self.commits.rewind(consumer, records)
            raise
        await self.commits.after(consumer, records, deliveries)

    async def _run(self, batch: Sequence[Received]) -> list[Awaitable[Any]]:
        """Parse, process, and send each reply as soon as its part of the batch is saved;
        the replies' deliveries (and the dead letters') are returned, not awaited."""
        started = now_ms()
        deliveries: list[Awaitable[Any]] = []
        incoming: list[Incoming] = []
        for record, received in batch:
            parsed = await self._parse(record, received, deliveries)
            if parsed is not None:
                incoming.append(parsed)

        async def ready(part: list[tuple[int, Answer]]) -> None:
            for index, (reply, stages) in part:
                item = incoming[index]
                queued = started - item.record.timestamp
                telemetry.answered(item.command, reply, item.record, queued)
                if item.reply_to is None:
                    continue
                timing = engine_timing(stages, queued=queued, sent=now_ms())
                deliveries.append(
                    await self._send_reply(
                        item.record, reply, item.reply_to, item.correlation_id, timing
                    )
                )

        await self._process(incoming, deliveries, ready)
        return deliveries

    async def _parse(
        self,
        record: Any,  # noqa: ANN401 - aiokafka records are untyped
        received: CommandEnvelope | Unparseable,
        deliveries: list[Awaitable[Any]],
    ) -> Incoming | None:
        reply_to, correlation_id = header(record, REPLY_TO), header(record, CORRELATION_ID)
        error: Exception
        if isinstance(received, Unparseable):
            error, command_id = received.error, None
        else:
            try:
                return Incoming(received.to_command(), record, reply_to, correlation_id)
            except (ValidationError, DomainError, ValueError) as refused:
                error, command_id = refused, received.command_id
        message = f"unparseable command: {summarise(error)}"
        log.warning(
            "dead-lettering record %s/%s@%s: %s",
            record.topic,
            record.partition,
            record.offset,
            message,
        )
        deliveries.append(await self._dead_letter(record, message))
        if reply_to and command_id:
            error_body = ErrorBody(status=422, code=ErrorCode.VALIDATION_ERROR, message=message)
            reply = ReplyEnvelope(command_id=command_id, ok=False, error=error_body)
            deliveries.append(await self._send_reply(record, reply, reply_to, correlation_id))
        return None

    async def _process(
        self, incoming: list[Incoming], deliveries: list[Awaitable[Any]], ready: Ready
    ) -> None:
        answered: set[int] = set()

        async def heard(part: list[tuple[int, Answer]]) -> None:
            answered.update(index for index, _ in part)
            await ready(part)

        try:
            await self.processor.process_timed([item.command for item in incoming], heard)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception:
            log.exception("batch of %d failed; isolating its commands", len(incoming))
        else:
            return
        for index, item in enumerate(incoming):
            if index not in answered:
                reply = await self._process_isolated(item, deliveries)
                await ready([(index, (reply, Stages()))])

    async def _process_isolated(
        self, item: Incoming, deliveries: list[Awaitable[Any]]
    ) -> ReplyEnvelope:
        """One command, retried a bounded number of times, then dead-lettered."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                replies = await self.processor.process_one(item.command)
                return replies[0]
            except INFRASTRUCTURE_ERRORS:
                raise
            except Exception as error:  # noqa: BLE001 - any other failure is this command's own
                log.warning(
                    "command %s failed (attempt %d): %s", item.command.command_id, attempt, error
                )
                last = error
                await asyncio.sleep(0.1 * attempt)
        message = f"the command failed {MAX_ATTEMPTS} times: {summarise(last)}"
        deliveries.append(await self._dead_letter(item.record, message))
        failed = ErrorBody(
            status=500, code=ErrorCode.INTERNAL_ERROR, message="the command could not be processed"
        )
        return ReplyEnvelope(command_id=item.command.command_id, ok=False, error=failed)

    async def _send_reply(
        self,
        record: Any,  # noqa: ANN401
        reply: ReplyEnvelope,
        reply_to: str,
        correlation_id: str | None,
        timing: str | None = None,
    ) -> Awaitable[Any]:
        headers = {REPLY_TO: reply_to, CORRELATION_ID: correlation_id or str(reply.command_id)}
        headers.update(telemetry.trace_headers(record))
        if timing is not None:
            headers[ENGINE_TIMING] = timing
        return await self.send(self.replies_topic, reply.to_bytes(), record.key, headers)

    async def _dead_letter(self, record: Any, message: str) -> Awaitable[Any]:  # noqa: ANN401
        """The record as it came, with why; its reply address kept, for `otc dlq replay`."""
        headers = dead_letter_headers(KafkaRecord.of(record), message)
        for name in (REPLY_TO, CORRELATION_ID):
            value = header(record, name)
            if value is not None:
                headers[name] = value
        return await self.send(self.dlq_topic, record.value or b"", record.key, headers)


async def without_reply_to(msg: object, original: Callable[[object], Awaitable[Any]]) -> Any:  # noqa: ANN401
    """Our `reply_to` header names a client instance, not a topic. FastStream would publish the
    handler's return value there on its own request/reply path: blank it, we reply ourselves."""
    message = await original(msg)
    message.reply_to = ""
    return message
