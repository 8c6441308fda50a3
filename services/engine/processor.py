"""The engine's decisions: a batch of commands against the event store, in order.

`CommandProcessor.process_timed` takes the commands of a batch (parsed by
services/engine/service.py) through three steps: load, in a thread, every order and idempotency
key the batch names, in one query; ask the outside world, concurrently, for what the decisions
need (services/engine/lookups.py; most commands need nothing); decide every command in order with
its entry in the command table (services/engine/handlers.py) against the in-memory aggregates,
and save all their new events in ONE transaction. eventsourcing takes a table lock per save, so
one save per batch instead of one per command is what makes it fast.

If the batch save conflicts (another writer touched one of its aggregates), the batch is redone
one command at a time, each with its own save. Replies are built only from what was saved, so
nothing is answered before it is durable. An infrastructure failure is raised.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from eventsourcing.persistence import RecordConflictError

from domain import commands as c
from domain.idempotency import IdempotencyKey, key_id
from domain.order import Order
from services.adapters.ports import PricingPort, WalletBalancePort
from services.contracts import ErrorBody, ReplyEnvelope
from services.engine import telemetry
from services.engine.event_store import Orders
from services.engine.handlers import COMMANDS, Batch, Policy, Result, Workspace, decide
from services.engine.lookups import Inputs, Lookout
from services.resources.port import ResourceDirectory
from services.timings import Stages

log = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 5

Answer = tuple[ReplyEnvelope, Stages]
"""A reply and the stages of the batch that decided it (services/timings.py)."""

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
