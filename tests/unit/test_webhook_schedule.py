"""The retry schedule: what an attempt's answer means for its delivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from services.webhooks.schedule import (
    SVIX_WAITS,
    Answer,
    Delivered,
    GiveUp,
    RetryAt,
    RetrySchedule,
    parse_retry_after,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MIDDLE = 0.5
"""A draw in the middle of the jitter: no jitter at all."""


def wait_after(decision: object) -> float:
    assert isinstance(decision, RetryAt), decision
    return (decision.at - NOW).total_seconds()


def test_the_default_schedule_is_svix_s() -> None:
    assert SVIX_WAITS == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert RetrySchedule().attempts == 8


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_any_2xx_is_delivered(status: int) -> None:
    assert RetrySchedule().decide(1, Answer(status), NOW, lambda: MIDDLE) == Delivered()


@pytest.mark.parametrize(
    "answer", [Answer(None, "refused"), Answer(301), Answer(400), Answer(429), Answer(503)]
)
def test_every_other_answer_is_tried_again_after_the_next_wait(answer: Answer) -> None:
    schedule = RetrySchedule()

    waits = [wait_after(schedule.decide(n, answer, NOW, lambda: MIDDLE)) for n in range(1, 8)]

    assert waits == list(SVIX_WAITS)


def test_after_the_last_wait_s_attempt_fails_the_delivery_has_failed() -> None:
    schedule = RetrySchedule(waits=(1.0, 2.0))

    assert isinstance(schedule.decide(2, Answer(500), NOW, lambda: MIDDLE), RetryAt)
    assert schedule.decide(3, Answer(500), NOW, lambda: MIDDLE) == GiveUp(gone=False)


def test_410_gone_stops_at_once() -> None:
    assert RetrySchedule().decide(1, Answer(410), NOW, lambda: MIDDLE) == GiveUp(gone=True)


def test_the_wait_is_jittered_by_a_tenth_either_way() -> None:
    schedule = RetrySchedule()

    low = wait_after(schedule.decide(2, Answer(500), NOW, lambda: 0.0))
    high = wait_after(schedule.decide(2, Answer(500), NOW, lambda: 0.999999))

    assert low == pytest.approx(270)
    assert high == pytest.approx(330, abs=0.01)


def test_retry_after_makes_the_wait_longer_never_shorter() -> None:
    schedule = RetrySchedule()

    longer = schedule.decide(1, Answer(503, retry_after=120), NOW, lambda: MIDDLE)
    shorter = schedule.decide(2, Answer(503, retry_after=1), NOW, lambda: MIDDLE)
    absurd = schedule.decide(1, Answer(429, retry_after=10**9), NOW, lambda: MIDDLE)

    assert wait_after(longer) == 120
    assert wait_after(shorter) == 300
    assert wait_after(absurd) == 86400


def test_retry_after_reads_seconds_and_http_dates() -> None:
    date = format_datetime(NOW + timedelta(seconds=90), usegmt=True)

    assert parse_retry_after("30", NOW) == 30
    assert parse_retry_after(date, NOW) == 90
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None
