"""Due deliveries -> signed HTTP POSTs.

The sender leases due deliveries from the store (which applies the ordering rule and the bound
per endpoint), up to its bound overall, and makes one attempt of each: the stored body, under
the delivery's webhook-id, stamped with the time of this attempt and signed by every secret the
endpoint signs with now. What the answer means is the schedule's business
(services/webhooks/schedule.py); the outcome is recorded under the lease. When the sender dies
mid-attempt the lease runs out and the delivery is sent again: the same id and body, a new
timestamp and signature, as the specification wants for a retry. The POST itself (connection
pools, the SSRF guard, reading the answer) is services/webhooks/poster.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services import metrics
from services.dead_letters import summarise
from services.resilience import INFRASTRUCTURE_ERRORS
from services.webhooks.model import Claim, Disable, Outcome
from services.webhooks.schedule import Answer, Delivered, GiveUp, RetryAt, RetrySchedule
from services.webhooks.signing import SecretBox, webhook_headers
from services.webhooks.store import WebhookStore

log = logging.getLogger(__name__)

Post = Callable[[str, dict[str, str], bytes], Awaitable[Answer]]
"""(url, headers, body) -> what came back (services/webhooks/poster.py's `HttpPoster`)."""

COALESCE_SECONDS = 0.005
"""While attempts are in flight, a wake-up waits this long so that one claim serves several."""
SETTLE_TRIES = 5
LEASE_MARGIN_SECONDS = 15.0
SETTLE_BATCH = 500
SETTLE_BATCH_SECONDS = 0.005
RESULTS = {Delivered: "delivered", RetryAt: "retrying", GiveUp: "failed"}
"""An attempt's result in otc_webhook_deliveries_total, by what the schedule decided."""


@dataclass(frozen=True)
class SenderPolicy:
    schedule: RetrySchedule = field(default_factory=RetrySchedule)
    max_in_flight: int = 64
    per_endpoint: int = 8
    timeout_seconds: float = 15.0
    poll_seconds: float = 0.5

    @property
    def lease(self) -> timedelta:
        """Longer than an attempt and the recording of its outcome. It is also how long the
        attempts of a sender that died hold their places: counted against their endpoint's
        bound, and holding their orders' later events."""
        return timedelta(seconds=self.timeout_seconds + LEASE_MARGIN_SECONDS)


class Sender:
    def __init__(  # noqa: PLR0913 - the sender's ports
        self,
        store: WebhookStore,
        post: Post,
        box: SecretBox,
        *,
        policy: SenderPolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.post = post
        self.box = box
        self.policy = policy or SenderPolicy()
        self.clock = clock
        self.draw = draw
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._outage = False
        self._to_settle: list[tuple[Claim, Outcome, asyncio.Future[None]]] = []
        self._settling: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Something may be due now (new deliveries, or an attempt settled)."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def run(self) -> None:
        """Claim and send until cancelled; on cancellation the attempts in flight are given a
        moment to finish (the others are sent again once their leases run out)."""
        try:
            while True:
                claimed = await self.claim_and_start()
                if claimed == 0:
                    await self._wait()
        finally:
            await self._finish()

    async def claim_and_start(self) -> int:
        """Start an attempt of each delivery claimable now; how many were started."""
        room = self.policy.max_in_flight - len(self._in_flight)
        if room <= 0:
            return 0
        if self._in_flight:
            await asyncio.sleep(COALESCE_SECONDS)
        self._wake.clear()
        try:
            claims = await self.store.claim(
                self.clock(),
                limit=room,
                per_endpoint=self.policy.per_endpoint,
                lease=self.policy.lease,
            )
        except INFRASTRUCTURE_ERRORS as error:
            if not self._outage:
                log.warning("webhooks: cannot claim deliveries: %s", summarise(error))
                self._outage = True
            await asyncio.sleep(self.policy.poll_seconds * 2)
            return 0
        except Exception:
            # Never let the sender die with the consumer still recording: say so, go on.
            log.exception("webhooks: claiming deliveries failed")
            await asyncio.sleep(self.policy.poll_seconds * 2)
            return 0
        if self._outage:
            log.info("webhooks: claiming deliveries again")
            self._outage = False
        for claim in claims:
            task = asyncio.create_task(self.attempt(claim))
            self._in_flight.add(task)
            task.add_done_callback(self._done)
        return len(claims)

    async def drain(self) -> None:
        """Send until nothing is due or in flight (for tests and benchmarks)."""
        while await self.claim_and_start() or self._in_flight:
            if self._in_flight:
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhooks: an attempt failed: %s", summarise(task.exception()))  # type: ignore[arg-type]
        self._wake.set()

    async def _wait(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self.policy.poll_seconds)

    async def _finish(self) -> None:
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=2.0)
        for task in self._in_flight:
            task.cancel()

    async def attempt(self, claim: Claim) -> None:
        """One attempt of one delivery, its outcome recorded under the claim's lease."""
        try:
            signing = [self.box.open(sealed) for sealed in claim.sealed_secrets]
        except ValueError as error:
            # Our configuration, not the receiver: leave it leased; it is tried again later.
            log.error(  # noqa: TRY400 - the message says it all; no traceback
                "webhooks: delivery %s not signed: %s", claim.webhook_id, error
            )
            return
        started = self.clock()
        timer = time.perf_counter()
        headers = webhook_headers(claim.webhook_id, int(started.timestamp()), claim.body, signing)
        answer = await self.post(claim.url, headers, claim.body)
        outcome = self.outcome(claim, answer, started)
        metrics.webhook_attempted(RESULTS[type(outcome.decision)], time.perf_counter() - timer)
        if not answer.ok:
            log.debug(
                "webhooks: attempt %d of %s to endpoint %s failed: %s",
                claim.attempts + 1,
                claim.webhook_id,
                claim.endpoint_id,
                answer.error,
            )
        if isinstance(outcome.decision, GiveUp):
            log.warning(
                "webhooks: delivery %s to endpoint %s failed for good: %s",
                claim.webhook_id,
                claim.endpoint_id,
                outcome.disable.reason if outcome.disable else answer.error,
            )
        await self.settle(claim, outcome)

    def outcome(self, claim: Claim, answer: Answer, started: datetime) -> Outcome:
        at = self.clock()
        attempt = claim.attempts + 1
        decision = self.policy.schedule.decide(attempt, answer, at, self.draw)
        disable = None
        if isinstance(decision, GiveUp):
            first = claim.first_attempt_at or started
            disable = (
                Disable(f"the endpoint answered 410 Gone at {at.isoformat()}")
                if decision.gone
                else Disable(
                    f"every attempt failed for the whole retry schedule ({attempt} attempts "
                    f"from {first.isoformat()} to {at.isoformat()}); the last: {answer.error}",
                    unless_success_since=first,
                )
            )
        return Outcome(
            at=at,
            decision=decision,
            status_code=answer.status,
            error=answer.error,
            disable=disable,
        )

    async def settle(self, claim: Claim, outcome: Outcome) -> None:
        """Record the outcome, in a batch with the others of the next few milliseconds (one
        transaction for many attempts); returns once it is recorded, or given up on."""
        recorded = asyncio.get_running_loop().create_future()
        self._to_settle.append((claim, outcome, recorded))
        if self._settling is None or self._settling.done():
            self._settling = asyncio.create_task(self._settle_batches())
        await recorded

    async def _settle_batches(self) -> None:
        await asyncio.sleep(SETTLE_BATCH_SECONDS)
        while self._to_settle:
            batch = self._to_settle[:SETTLE_BATCH]
            del self._to_settle[:SETTLE_BATCH]
            try:
                await self._record([(claim, outcome) for claim, outcome, _ in batch])
            finally:
                for _, _, recorded in batch:
                    if not recorded.done():
                        recorded.set_result(None)

    async def _record(self, settled: list[tuple[Claim, Outcome]]) -> None:
        """While the database is away, try again a few times; past that, the leases run out
        and the deliveries are sent again: at least once."""
        for attempt in range(1, SETTLE_TRIES + 1):
            try:
                await self.store.settle_many(settled)
            except INFRASTRUCTURE_ERRORS as error:
                if attempt == SETTLE_TRIES:
                    log.warning(
                        "webhooks: %d outcomes not recorded (%s); they will be sent again",
                        len(settled),
                        summarise(error),
                    )
                    return
                await asyncio.sleep(min(10.0, 0.5 * 2**attempt))
            except Exception:
                log.exception("webhooks: %d outcomes not recorded", len(settled))
                return
            else:
                return
