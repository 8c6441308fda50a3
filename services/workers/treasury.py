"""The treasury workers: they move money when an order event asks for it and report the outcome
as a command to the engine. They never write the event store.

Which event moves which leg, whose leg it is, how much and in which direction are domain tables
(domain/movements.py: TRIGGERS, MOVERS, DIRECTION), read here by side and event class; which
command reports each outcome is a table too (services/workers/outcomes.py: REPORTS). A worker is
one party's `Mover` driven by this common flow:

1. An event asks for a leg of an order this party moves; the worker reads the order and acts only
   if it still waits for that leg (a redelivered event moves nothing).
2. It moves under a deterministic reference (order, leg, attempt), so moving again after a crash
   or a lost answer can never move twice, and reports under a deterministic command id.
3. The outcome is *done*, *refused* (only the party's explicit refusals: then a failure outcome)
   or *unknown*. Unknown is learned by reading the transfer back by its reference: booked is done,
   absent is retried with the same reference. Still unknown, the movement is parked
   (services/workers/parked.py) and retried in the background with capped backoff; past a bound
   the order is flagged for operators (RecordMovementUnresolved). Never a failure.

An event the worker cannot handle (it does not parse, or handling it keeps failing for a reason
of its own) is retried a bounded number of times without holding up other orders, then goes to
the dead-letter topic with the worker's name and the error, and its offset is committed.
Infrastructure failures (the event store, Kafka) are raised: the batch is redelivered.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

from domain import commands as c
from domain.commands import ActorRef
from domain.movements import MOVERS, TRIGGERS, reference
from domain.order import Leg, Order, Side
from services import metrics
from services.adapters.ports import MovementRefusedError, MovementUnknownError
from services.contracts import CAUSED_BY, EventEnvelope, Unparseable, event_type, parse_event
from services.dead_letters import DeadLetter, KafkaRecord, summarise
from services.logs import bound
from services.resilience import INFRASTRUCTURE_ERRORS
from services.workers.movers import Instruction, Mover
from services.workers.outcomes import Done, Outcome, Refused, Unknown, flagged, reported
from services.workers.parked import Parked, ParkedMovements

log = logging.getLogger(__name__)

CONCURRENT_ORDERS = 32

Publish = Callable[[c.Command], Awaitable[None]]
LoadOrder = Callable[[UUID], Awaitable[Order | None]]

ASKING_EVENTS: dict[str, type[Order.Event]] = {
    event_type(event.__name__): event for _, event in TRIGGERS
}
"""The events that ask for a leg (domain/movements.py TRIGGERS), by their published type."""
SIDES = {side.value: side for side in Side}


@dataclass(frozen=True)
class WorkerPolicy:
    event_attempts: int = 3
    event_backoff_seconds: float = 0.2
    movement_base_seconds: float = 1.0
    movement_max_seconds: float = 60.0
    flag_after: timedelta = timedelta(minutes=5)
    lease: timedelta = timedelta(minutes=2)
    batch_of_parked: int = 50

    def next_try(self, tries: int, draw: Callable[[], float]) -> timedelta:
        """Capped exponential backoff with jitter: between half and all of the step."""
        step = min(self.movement_max_seconds, self.movement_base_seconds * 2.0**tries)
        return timedelta(seconds=step * (0.5 + draw() / 2))


class OrderMissingError(Exception):
    """An event of an order the event store does not hold: this worker reads another store."""


class TreasuryWorker:
    def __init__(  # noqa: PLR0913 - the worker's ports
        self,
        mover: Mover,
        *,
        load_order: LoadOrder,
        publish: Publish,
        parked: ParkedMovements,
        dead_letter: DeadLetter,
        policy: WorkerPolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.mover = mover
        self.name = mover.party.value
        self.actor = ActorRef.system(self.name)
        self.load_order = load_order
        self.publish = publish
        self.parked = parked
        self.dead_letter = dead_letter
        self.policy = policy or WorkerPolicy()
        self.clock = clock
        self.sleep = sleep
        self.draw = draw

    # ------------------------------------------------------------------ events

    async def handle_records(self, records: Sequence[KafkaRecord]) -> None:
        """`handle_received` of records not parsed yet."""
        await self.handle_received([(record, parse_event(record.value)) for record in records])

    async def handle_received(
        self, batch: Sequence[tuple[KafkaRecord, EventEnvelope | Unparseable]]
    ) -> None:
        """Each order's events in order, different orders concurrently; returns once every
        event is handled, parked or dead-lettered."""
        by_order: dict[UUID, list[tuple[KafkaRecord, EventEnvelope]]] = {}
        for record, envelope in batch:
            if isinstance(envelope, Unparseable):
                message = f"{self.name}: unparseable: {summarise(envelope.error)}"
                await self.dead_letter(record, message)
                continue
            by_order.setdefault(envelope.order_id, []).append((record, envelope))
        gate = asyncio.Semaphore(CONCURRENT_ORDERS)

        async def one_order(events: list[tuple[KafkaRecord, EventEnvelope]]) -> None:
            async with gate:
                for record, envelope in events:
                    # The lines of this event, and the `trace_id` of the outcome it reports.
                    with bound(
                        order_id=envelope.order_id,
                        event_id=envelope.event_id,
                        trace_id=record.header(CAUSED_BY),
                    ):
                        await self.guarded(record, envelope)

        await asyncio.gather(*(one_order(events) for events in by_order.values()))

    async def guarded(self, record: KafkaRecord, envelope: EventEnvelope) -> None:
        """One event, retried a bounded number of times, then dead-lettered."""
        attempts = self.policy.event_attempts
        for attempt in range(1, attempts + 1):
            try:
                await self.handle(envelope)
            except INFRASTRUCTURE_ERRORS:
                raise
            except Exception as error:  # noqa: BLE001 - any other failure is this event's own
                log.warning(
                    "%s: event %s failed (try %d of %d): %s",
                    self.name,
                    envelope.event_id,
                    attempt,
                    attempts,
                    summarise(error),
                )
                failure = error
                if attempt < attempts:
                    await self.sleep(self.policy.event_backoff_seconds * 2 ** (attempt - 1))
            else:
                return
        message = f"{self.name}: failed {attempts} times: {summarise(failure)}"
        log.error("%s: dead-lettering event %s: %s", self.name, envelope.event_id, message)
        await self.dead_letter(record, message)

    def leg_asked(self, envelope: EventEnvelope) -> Leg | None:
        """The leg this event asks this worker to move, if any (TRIGGERS, then MOVERS)."""
        side, event = SIDES.get(envelope.side), ASKING_EVENTS.get(envelope.type)
        if side is None or event is None:
            return None
        leg = TRIGGERS.get((side, event))
        if leg is None or MOVERS.get((side, leg)) is not self.mover.party:
            return None
        return leg

    async def handle(self, envelope: EventEnvelope) -> None:
        leg = self.leg_asked(envelope)
        if leg is None:
            return
        order = await self.load_order(envelope.order_id)
        if order is None:
            raise OrderMissingError(f"order {envelope.order_id} is not in the event store")
        await self.progress(order, leg, None)

    # ------------------------------------------------------------------ one leg

    async def progress(self, order: Order, leg: Leg, parked: Parked | None) -> None:
        """Move a leg the order waits for and report the outcome, or park (or keep) it when
        the outcome is unknown. A parked movement the order no longer waits for is forgotten."""
        attempt = order.attempt_of(leg)
        if not order.waits_for(leg) or (parked is not None and parked.attempt != attempt):
            if parked is not None:
                await self.parked.settle(self.name, parked)
            return
        instruction = await self.mover.instruction(order, leg)
        started = time.perf_counter()
        outcome = await self.settle(instruction, reference(order.id, leg, attempt))
        self.observe(order, leg, outcome, time.perf_counter() - started)
        if isinstance(outcome, Unknown):
            await self.unresolved(order, leg, attempt, outcome.reason, parked)
            return
        await self.publish(reported(order, leg, attempt, outcome, self.actor, self.clock()))
        if parked is not None:
            await self.parked.settle(self.name, parked)
            log.info(
                "%s: %s of order %s resolved after %d tries", self.name, leg, order.id, parked.tries
            )

    def observe(self, order: Order, leg: Leg, outcome: Outcome, seconds: float) -> None:
        """Count the movement by party, leg and outcome; say what it came to."""
        name = type(outcome).__name__.lower()
        metrics.movement_tried(self.name, leg.value, name, seconds)
        with bound(order_id=order.id):
            if isinstance(outcome, Done):
                log.info("%s: %s done (%s)", self.name, leg, outcome.transfer.reference)
            elif isinstance(outcome, Refused):
                log.info("%s: %s refused: %s", self.name, leg, outcome.code)

    async def settle(self, instruction: Instruction, ref: str) -> Outcome:
        """Move, and when the answer does not say what happened, read the transfer back."""
        try:
            return Done(await self.mover.execute(instruction, ref))
        except MovementRefusedError as refusal:
            return Refused(refusal.code, str(refusal))
        except MovementUnknownError as unknown:
            reason = str(unknown)
        try:
            found = await self.mover.find(ref)
        except MovementUnknownError as unreadable:
            return Unknown(f"{reason}; reading it back: {unreadable}")
        if found is None:
            return Unknown(f"{reason}; not booked (yet): retrying the same reference")
        if not instruction.matches(found):
            return Unknown(f"{reason}; booked under our reference, but not as asked")
        return Done(found)

    async def unresolved(
        self, order: Order, leg: Leg, attempt: int, reason: str, parked: Parked | None
    ) -> None:
        now = self.clock()
        if parked is None:
            first = Parked(
                order_id=order.id,
                leg=leg,
                attempt=attempt,
                first_seen=now,
                next_try=now + self.policy.next_try(0, self.draw),
                last_error=reason,
            )
            await self.parked.park(self.name, first)
            log.warning("%s: %s of order %s unknown; parked: %s", self.name, leg, order.id, reason)
            return
        flag = not parked.flagged and now - parked.first_seen >= self.policy.flag_after
        if flag:
            await self.publish(flagged(order, leg, attempt, reason, self.actor, self.clock()))
            log.error(
                "%s: %s of order %s still unknown after %s; flagged for operators: %s",
                self.name,
                leg,
                order.id,
                now - parked.first_seen,
                reason,
            )
        tries = parked.tries + 1
        await self.parked.reschedule(
            self.name,
            replace(
                parked,
                tries=tries,
                next_try=now + self.policy.next_try(tries, self.draw),
                flagged=parked.flagged or flag,
                last_error=reason,
            ),
        )

    # ------------------------------------------------------------------ parked movements

    async def retry_parked(self) -> int:
        """One round over the parked movements that are due; how many were due."""
        now = self.clock()
        due = await self.parked.claim_due(
            self.name, now, self.policy.lease, self.policy.batch_of_parked
        )
        gate = asyncio.Semaphore(CONCURRENT_ORDERS)

        async def one(parked: Parked) -> None:
            async with gate:
                order = await self.load_order(parked.order_id)
                if order is None:
                    await self.parked.settle(self.name, parked)
                    return
                try:
                    await self.progress(order, parked.leg, parked)
                except INFRASTRUCTURE_ERRORS:
                    raise
                except Exception as error:  # noqa: BLE001 - kept parked, retried later
                    await self.unresolved(
                        order, parked.leg, parked.attempt, summarise(error), parked
                    )

        await asyncio.gather(*(one(parked) for parked in due))
        return len(due)

    async def run_parked(self, interval_seconds: float = 1.0) -> None:
        """Retry parked movements until cancelled; an outage only delays them."""
        while True:
            try:
                await self.retry_parked()
            except Exception:
                log.exception("%s: retrying parked movements failed; trying again", self.name)
            await self.sleep(interval_seconds)
