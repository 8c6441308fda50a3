"""The adapters' HTTP plumbing: which failures are retried, how long it waits, what it raises."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from services.adapters.http import HttpRejectedError, HttpUpstream, RetryPolicy, upstream_client
from services.adapters.ports import UpstreamRejectedError, UpstreamUnavailableError


class Script:
    """Answers the calls in order, from a list of responses or exceptions; records the requests."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self._answers: Iterator[httpx.Response | Exception] = iter(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = next(self._answers)
        if isinstance(answer, Exception):
            raise answer
        return answer


def upstream(script: Script, retry: RetryPolicy, sleeps: list[float]) -> HttpUpstream:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client = httpx.AsyncClient(transport=httpx.MockTransport(script), base_url="http://party")
    return HttpUpstream(client, party="party", retry=retry, draw=lambda: 1.0, sleep=sleep)


RETRY = RetryPolicy(max_attempts=4, base_delay_seconds=0.1, max_delay_seconds=0.3)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503),
        httpx.Response(500, json={"code": "BOOM"}),
        httpx.Response(429),
        httpx.Response(408),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
    ],
    ids=["503", "500", "429", "408", "timeout", "refused"],
)
async def test_retryable_failures_are_retried_until_an_answer(
    failure: httpx.Response | Exception,
) -> None:
    script = Script(failure, failure, httpx.Response(200, json={"ok": True}))
    sleeps: list[float] = []

    answer = await upstream(script, RETRY, sleeps).call("POST", "/x", operation="op", payload={})

    assert answer == {"ok": True}
    assert len(script.requests) == 3
    assert sleeps == [0.1, 0.2]


async def test_exhausted_retries_raise_unavailable_with_capped_backoff() -> None:
    script = Script(*[httpx.Response(503)] * 4)
    sleeps: list[float] = []

    with pytest.raises(UpstreamUnavailableError, match="4 tries"):
        await upstream(script, RETRY, sleeps).call("GET", "/x", operation="op")

    assert len(script.requests) == 4
    assert sleeps == [0.1, 0.2, 0.3]


async def test_backoff_is_full_jitter_between_zero_and_the_ceiling() -> None:
    policy = RetryPolicy(base_delay_seconds=0.1, max_delay_seconds=1.0)

    assert policy.backoff(1, lambda: 0.0) == 0.0
    assert policy.backoff(3, lambda: 0.5) == pytest.approx(0.2)
    assert policy.backoff(10, lambda: 1.0) == 1.0


async def test_retry_after_is_honoured_up_to_the_cap() -> None:
    script = Script(
        httpx.Response(429, headers={"Retry-After": "0.25"}), httpx.Response(200, json={})
    )
    sleeps: list[float] = []

    await upstream(script, RETRY, sleeps).call("GET", "/x", operation="op")

    assert sleeps == [0.25]


async def test_permanent_refusal_is_raised_at_once_with_the_partys_code() -> None:
    body = {"code": "INSUFFICIENT_FUNDS", "message": "no money"}
    script = Script(httpx.Response(422, json=body))
    sleeps: list[float] = []

    with pytest.raises(HttpRejectedError) as raised:
        await upstream(script, RETRY, sleeps).call("POST", "/x", operation="op", payload={})

    assert isinstance(raised.value, UpstreamRejectedError)
    assert (raised.value.code, raised.value.status, raised.value.body) == (
        "INSUFFICIENT_FUNDS",
        422,
        body,
    )
    assert len(script.requests) == 1
    assert sleeps == []


async def test_refusal_without_a_json_body_gets_a_code_from_its_status() -> None:
    script = Script(httpx.Response(404, text="<html>not here</html>"))

    with pytest.raises(UpstreamRejectedError) as raised:
        await upstream(script, RETRY, []).call("GET", "/x", operation="op")

    assert raised.value.code == "HTTP_404"


async def test_success_without_a_json_object_is_a_protocol_error() -> None:
    script = Script(httpx.Response(200, json=[1, 2]))

    with pytest.raises(UpstreamRejectedError) as raised:
        await upstream(script, RETRY, []).call("GET", "/x", operation="op")

    assert raised.value.code == "UPSTREAM_PROTOCOL_ERROR"


async def test_numbers_in_answers_are_decimals_never_floats() -> None:
    script = Script(httpx.Response(200, content=b'{"balance": 0.1}'))

    answer = await upstream(script, RETRY, []).call("GET", "/x", operation="op")

    assert str(answer["balance"]) == "0.1"
    assert not isinstance(answer["balance"], float)


async def test_logs_name_the_operation_but_never_the_token_or_the_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = "s3cret-token-value"
    script = Script(httpx.Response(503), httpx.Response(200, json={}))
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(script),
        base_url="http://party",
        headers={"Authorization": f"Bearer {token}"},
    )
    http = HttpUpstream(client, party="bank", retry=RETRY, sleep=_no_sleep)

    with caplog.at_level(logging.DEBUG, logger="services.adapters"):
        await http.call("GET", "/accounts/DE89370400440532013000", operation="balance")

    assert "bank balance" in caplog.text
    assert token not in caplog.text
    assert "DE89370400440532013000" not in caplog.text


async def _no_sleep(_: float) -> None:
    return None


async def test_client_sends_the_bearer_token_and_has_the_timeout() -> None:
    client = upstream_client("http://party", timeout_seconds=2.5, bearer_token=SecretStr("tok"))

    assert client.headers["Authorization"] == "Bearer tok"
    assert client.timeout.read == 2.5
    await client.aclose()
