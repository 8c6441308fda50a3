"""What one attempt's answer means for its delivery: delivered, try again at a time, or stop.

Success is a 2xx answer within the timeout. Any other answer, and no answer (refused, timed
out, a TLS or DNS failure, an address the guard refuses), is a failed attempt: the delivery is
tried again after the next wait of the schedule (Svix's by default: 5 s, 5 min, 30 min, 2 h,
5 h, 10 h, 10 h), jittered, or later when the receiver asked so with `Retry-After` (never
sooner: the schedule is what keeps a failing receiver from burning its attempts). After the last
wait's attempt fails, the delivery has failed. 410 Gone stops at once: the receiver says the
endpoint is gone, and the endpoint is disabled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from http import HTTPStatus

SVIX_WAITS = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
JITTER = 0.1
LONGEST_RETRY_AFTER = 86400.0


@dataclass(frozen=True)
class Answer:
    """What one attempt got: an HTTP status (None: no answer at all) and why it failed."""

    status: int | None
    error: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return (
            self.status is not None and HTTPStatus.OK <= self.status < HTTPStatus.MULTIPLE_CHOICES
        )


@dataclass(frozen=True)
class Delivered:
    pass


@dataclass(frozen=True)
class RetryAt:
    at: datetime


@dataclass(frozen=True)
class GiveUp:
    """The delivery has failed; `gone`: the receiver answered 410, disable the endpoint."""

    gone: bool


Decision = Delivered | RetryAt | GiveUp


@dataclass(frozen=True)
class RetrySchedule:
    waits: tuple[float, ...] = SVIX_WAITS
    jitter: float = JITTER

    @property
    def attempts(self) -> int:
        """Attempts of one delivery in all: the first, and one after each wait."""
        return len(self.waits) + 1

    def decide(
        self, attempt: int, answer: Answer, now: datetime, draw: Callable[[], float]
    ) -> Decision:
        """The decision after attempt number `attempt` (from 1) got `answer`; `draw` gives
        a uniform number in [0, 1) for the jitter."""
        if answer.ok:
            return Delivered()
        if answer.status == HTTPStatus.GONE:
            return GiveUp(gone=True)
        if attempt >= self.attempts:
            return GiveUp(gone=False)
        wait = self.waits[attempt - 1] * (1 + self.jitter * (2 * draw() - 1))
        if answer.retry_after is not None:
            wait = max(wait, min(answer.retry_after, LONGEST_RETRY_AFTER))
        return RetryAt(now + timedelta(seconds=wait))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` in seconds: delta-seconds or an HTTP date; None when absent or garbled."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())
