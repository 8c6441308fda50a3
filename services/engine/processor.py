"""Runs a batch of commands against the event store: the engine's throughput lever.

A batch is handled in three steps. (1) Load, in a thread, every order and idempotency key the
batch names. (2) Ask the outside world, concurrently, for what the decisions need: prices,
resources, live wallet balances. (3) Decide every command in order against the in-memory
aggregates, in a thread, and save all their new events in ONE transaction. eventsourcing takes a
table lock per save, so one save per batch instead of one per command is what makes it fast.

If the batch save conflicts (another writer touched one of its aggregates), the batch is redone
one command at a time, each with its own save. Replies are built only from what was saved, so
nothing is answered before it is durable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import RecordConflictError

from domain import commands as c
from domain.errors import DomainError, ErrorCode
from domain.idempotency import IdempotencyKey, keeps, key_id, request_fingerprint
from domain.order import Order, Side
from domain.views import OrderView
from services.adapters.ports import Price, PricingPort, UpstreamError, WalletBalancePort
from services.contracts import ErrorBody, ReplyEnvelope
from services.engine.event_store import Orders
from services.engine.handlers import COMMANDS, Context, Inputs, Lookups, Policy
from services.resources.port import ResourceDirectory

log = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 5
UPSTREAM_CONCURRENCY = 64


@dataclass
class Workspace:
    """The aggregates a batch touches: loaded once, changed in memory, saved together."""

    orders: dict[UUID, Order]
    keys: dict[UUID, IdempotencyKey]


@dataclass
class Batch:
    """The shared state of deciding one batch."""

    ws: Workspace
    inputs: Inputs
    now: datetime
    touched: dict[UUID, Aggregate] = field(default_factory=dict)
    views: dict[tuple[UUID, int], OrderView] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    """The outcome of one command before it is saved: enough to build its reply afterwards."""

    command: c.Command
    view: OrderView | None = None
    error: DomainError | None = None
    version: int | None = None
    replayed: bool = False
    stored_reply: dict[str, Any] | None = None

    def as_stored(self) -> dict[str, Any]:
        """What an idempotency key keeps of this result, to replay it."""
        return {
            "ok": self.error is None,
            "order": None if self.view is None else self.view.public_json(),
            "error": None
            if self.error is None
            else ErrorBody.of(self.error).model_dump(mode="json"),
            "version": self.version,
        }


def dependent_cut(commands: Sequence[c.Command]) -> tuple[list[c.Command], list[c.Command]]:
    """The longest head of `commands` in which no command that needs outside lookups follows
    another command of its own order, and the rest."""
    seen: set[UUID] = set()
    for index, command in enumerate(commands):
        if index and COMMANDS[type(command)].looks_outside and command.order_id in seen:
            return list(commands[:index]), list(commands[index:])
        seen.add(command.order_id)
    return list(commands), []


class CommandProcessor:
    def __init__(  # noqa: PLR0913 - the engine's collaborators
        self,
        orders: Orders,
        *,
        pricing: PricingPort,
        balances: WalletBalancePort,
        resources: ResourceDirectory,
        policy: Policy,
        clock: Callable[[], datetime],
    ) -> None:
        self.orders = orders
        self.pricing = pricing
        self.balances = balances
        self.resources = resources
        self.policy = policy
        self.clock = clock
        self._upstream = asyncio.Semaphore(UPSTREAM_CONCURRENCY)

    async def process(self, commands: Sequence[c.Command]) -> list[ReplyEnvelope]:
        """Replies to every command, in order. Raises only on infrastructure failure.

        A command whose outside lookups depend on its order (a requote's or an approval's
        price) cannot have them made before an earlier command of the same batch has changed
        or created that order: the batch is cut there, and the rest follows as a batch of its
        own, in order."""
        replies: list[ReplyEnvelope] = []
        rest = list(commands)
        while rest:
            head, rest = dependent_cut(rest)
            replies.extend(await self._process_batch(head))
        return replies

    async def _process_batch(self, commands: Sequence[c.Command]) -> list[ReplyEnvelope]:
        if not commands:
            return []
        started = time.perf_counter()
        workspace = await asyncio.to_thread(self._load, commands)
        loaded = time.perf_counter()
        inputs = await self._gather(commands, workspace)
        gathered = time.perf_counter()
        try:
            replies = await asyncio.to_thread(self._decide_and_save, commands, workspace, inputs)
        except RecordConflictError:
            log.warning("batch of %d conflicted; redoing it one command at a time", len(commands))
        else:
            log.debug(
                "batch of %d: load %.0f ms, outside world %.0f ms, decide and save %.0f ms",
                len(commands),
                (loaded - started) * 1000,
                (gathered - loaded) * 1000,
                (time.perf_counter() - gathered) * 1000,
            )
            return replies
        one_by_one: list[ReplyEnvelope] = []
        for command in commands:
            one_by_one.extend(await self.process_one(command, inputs))
        return one_by_one

    async def process_one(
        self, command: c.Command, inputs: Inputs | None = None
    ) -> list[ReplyEnvelope]:
        """One command with its own load and save, retried on conflicts."""
        for attempt in range(1, MAX_CONFLICT_RETRIES + 1):
            workspace = await asyncio.to_thread(self._load, [command])
            if inputs is None:
                inputs = await self._gather([command], workspace)
            try:
                return await asyncio.to_thread(self._decide_and_save, [command], workspace, inputs)
            except RecordConflictError:
                log.warning("command %s conflicted (attempt %d)", command.command_id, attempt)
                await asyncio.sleep(0.05 * attempt)
        raise RecordConflictError(f"command {command.command_id} kept conflicting")

    # ------------------------------------------------------------------ step 1: load

    def _load(self, commands: Sequence[c.Command]) -> Workspace:
        key_ids = [
            key_id(cmd.customer_id, cmd.idempotency_key) for cmd in commands if cmd.idempotency_key
        ]
        loaded = self.orders.load_many([*(cmd.order_id for cmd in commands), *key_ids])
        return Workspace(
            orders={i: a for i, a in loaded.items() if isinstance(a, Order)},
            keys={i: a for i, a in loaded.items() if isinstance(a, IdempotencyKey)},
        )

    # ------------------------------------------------------------------ step 2: the outside world

    async def _gather(self, commands: Sequence[c.Command], ws: Workspace) -> Inputs:
        """Every lookup the batch's unanswered commands need (the command table says which):
        resources first, then prices and balances, all concurrently."""
        inputs = Inputs()
        needs = [
            (cmd, COMMANDS[type(cmd)].needs(ws.orders.get(cmd.order_id), cmd, self.policy))
            for cmd in commands
            if not self._answered(cmd, ws)
        ]
        await self._gather_resources([lookups for _, lookups in needs], inputs)
        calls: list[Awaitable[None]] = []
        for cmd, lookups in needs:
            if lookups.price is not None:
                side, amount = lookups.price
                calls.append(self._price(cmd.command_id, side, amount, inputs))
            if lookups.balance_of is not None:
                calls.append(self._balance(cmd.command_id, lookups.balance_of, inputs))
        await asyncio.gather(*calls)
        return inputs

    @staticmethod
    def _answered(cmd: c.Command, ws: Workspace) -> bool:
        """Already answered before: a used idempotency key or a command the order recorded."""
        if cmd.idempotency_key and key_id(cmd.customer_id, cmd.idempotency_key) in ws.keys:
            return True
        order = ws.orders.get(cmd.order_id)
        return order is not None and order.version_after(cmd.command_id) is not None

    async def _gather_resources(self, needs: Sequence[Lookups], inputs: Inputs) -> None:
        account_ids = {account for lookups in needs for account in lookups.accounts}
        wallet_ids = {wallet for lookups in needs for wallet in lookups.wallets}
        if not account_ids and not wallet_ids:
            return
        accounts, wallets = await asyncio.gather(
            self.resources.accounts(account_ids),
            self.resources.wallets(wallet_ids),
        )
        inputs.accounts.update(accounts)
        inputs.wallets.update(wallets)

    async def _price(self, command_id: UUID, side: Side, amount: Decimal, inputs: Inputs) -> None:
        async with self._upstream:
            try:
                price: Price | DomainError = await self.pricing.price(
                    source_currency=side.source_currency,
                    destination_currency=side.destination_currency,
                    source_amount=amount,
                    idempotency_key=uuid5(command_id, "price"),
                )
            except UpstreamError as error:
                log.warning("pricing failed for command %s: %s", command_id, error)
                price = DomainError(
                    ErrorCode.QUOTE_UNAVAILABLE, "no price could be had from the provider"
                )
        inputs.prices[command_id] = price

    async def _balance(self, command_id: UUID, wallet_id: UUID, inputs: Inputs) -> None:
        wallet = inputs.wallets.get(wallet_id)
        if wallet is None or wallet.usdc_address is None:
            return  # the decision refuses it for the wallet itself
        async with self._upstream:
            try:
                balance = await self.balances.usdc_balance(
                    network=wallet.network, address=wallet.usdc_address
                )
            except UpstreamError as error:
                log.warning("balance read failed for command %s: %s", command_id, error)
                inputs.balances[command_id] = DomainError(
                    ErrorCode.QUOTE_UNAVAILABLE,
                    "the live wallet balance could not be read",
                )
            else:
                inputs.balances[command_id] = balance

    # ------------------------------------------------------------------ step 3: decide and save

    def _decide_and_save(
        self,
        commands: Sequence[c.Command],
        ws: Workspace,
        inputs: Inputs,
    ) -> list[ReplyEnvelope]:
        batch = Batch(ws, inputs, self.clock())
        results = [self._decide(cmd, batch) for cmd in commands]
        touched = list(batch.touched.values())
        recordings = self.orders.save_all(touched) if touched else []
        positions = {
            (r.domain_event.originator_id, r.domain_event.originator_version): r.notification.id
            for r in recordings
        }
        return [self._reply(result, positions) for result in results]

    def _decide(self, cmd: c.Command, batch: Batch) -> Result:
        if cmd.idempotency_key is None:
            return self._run(cmd, batch)
        kid = key_id(cmd.customer_id, cmd.idempotency_key)
        request = request_fingerprint(cmd)
        record = batch.ws.keys.get(kid)
        if record is not None:
            try:
                record.check_same_request(request)
            except DomainError as error:
                return Result(cmd, error=error)
            return Result(cmd, replayed=True, stored_reply=record.reply)
        result = self._run(cmd, batch)
        if keeps(result.error):
            record = IdempotencyKey.use(
                customer_id=cmd.customer_id,
                key=cmd.idempotency_key,
                fingerprint=request,
                command_id=cmd.command_id,
                reply=result.as_stored(),
                now=batch.now,
            )
            batch.ws.keys[kid] = record
            batch.touched[kid] = record
        return result

    def _run(self, cmd: c.Command, batch: Batch) -> Result:
        """One command through its table entry: who may send it, a redelivery answered from
        the version it reached, otherwise the decision, its events left pending."""
        entry = COMMANDS[type(cmd)]
        context = Context(batch.inputs, self.policy, batch.now)
        actor = cmd.actor.to_actor()
        order = batch.ws.orders.get(cmd.order_id)
        try:
            entry.authority.check(actor, order, cmd.moves())
            if order is not None:
                order.check_owner(actor)
                done_at = order.version_after(cmd.command_id)
                if done_at is not None:
                    view = self._view_at(order, done_at, batch.views)
                    return Result(cmd, view=view, version=done_at)
            try:
                if order is not None and entry.observes_time:
                    order.observe_time(context.cause(cmd))
                order = entry.handle(order, cmd, context)
            finally:
                if order is not None and order.pending_events:
                    batch.ws.orders[order.id] = batch.touched[order.id] = order
            return self._ok(cmd, order, batch.views)
        except DomainError as error:
            return Result(cmd, error=error)

    @staticmethod
    def _ok(cmd: c.Command, order: Order, views: dict[tuple[UUID, int], OrderView]) -> Result:
        view = OrderView.of(order)
        views[(order.id, order.version)] = view
        return Result(cmd, view=view, version=order.version)

    def _view_at(
        self, order: Order, version: int, views: dict[tuple[UUID, int], OrderView]
    ) -> OrderView:
        if (order.id, version) in views:
            return views[(order.id, version)]
        if version == order.version:
            return OrderView.of(order)
        then = self.orders.order(order.id, version=version)
        if then is None:
            raise DomainError(ErrorCode.INTERNAL_ERROR, "the order's history could not be read")
        return OrderView.of(then)

    def _reply(self, result: Result, positions: dict[tuple[UUID, int], int]) -> ReplyEnvelope:
        if result.stored_reply is not None:
            stored = result.stored_reply
            order = stored.get("order")
            version = stored.get("version")
            position = None
            if stored["ok"] and order is not None and version is not None:
                position = self.orders.position_of(UUID(order["id"]), int(version))
            return ReplyEnvelope(
                command_id=result.command.command_id,
                ok=bool(stored["ok"]),
                order=order,
                error=None
                if stored["error"] is None
                else ErrorBody.model_validate(stored["error"]),
                position=position,
                replayed=True,
            )
        if result.error is not None:
            return ReplyEnvelope(
                command_id=result.command.command_id,
                ok=False,
                error=ErrorBody.of(result.error),
            )
        assert result.view is not None  # noqa: S101 - a result is a view or an error
        assert result.version is not None  # noqa: S101
        key = (result.view.id, result.version)
        position = positions.get(key) or self.orders.position_of(*key)
        return ReplyEnvelope(
            command_id=result.command.command_id,
            ok=True,
            order=result.view.public_json(),
            position=position,
        )
