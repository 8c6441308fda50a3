"""HTTP plumbing shared by the adapters: the client the composition root creates, and calls with
bounded retries.

A call is retried on a timeout, a network error, 408, 429 or any 5xx, up to `max_attempts` tries,
sleeping between tries for a random time between 0 and `base x 2**(try - 1)` seconds capped at
`max_delay` ("full jitter"), or for a `Retry-After` the party asked for when that is longer (still
capped). Exhausted retries raise `UpstreamUnavailableError`; any other 4xx raises
`UpstreamRejectedError` at once, with the party's error code. Retrying a POST is safe only because
every POST the adapters send is idempotent (a client reference or an idempotency key).

Money movements are classified on top of that (`move`): *done* (a 2xx with the transfer),
*refused* (`MovementRefusedError`, only for the party's explicit list of codes that mean nothing
moved) or *unknown* (`MovementUnknownError`: exhausted retries, an unreadable 2xx, a 409, any
other 4xx). An unknown outcome is learned by reading the transfer back by its reference
(`read_transfer`), never guessed.

Logs name the operation, the try and the status or error class: never URLs, headers, tokens or
bodies (they hold account ids and addresses).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from services.adapters.ports import (
    MovementRefusedError,
    MovementUnknownError,
    UpstreamError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from services.settings import Settings

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
RETRYABLE_STATUSES = frozenset({408, 429})
SERVER_ERROR = 500
NOT_FOUND = 404
CONFLICT = 409


class HttpRejectedError(UpstreamRejectedError):
    """A permanent refusal with its HTTP status and the party's error body."""

    def __init__(self, code: str, message: str, *, status: int, body: Mapping[str, Any]) -> None:
        super().__init__(code, message)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay_seconds: float = 0.05
    max_delay_seconds: float = 2.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(max_attempts=settings.upstream_max_attempts)

    def backoff(self, failed_attempts: int, draw: Callable[[], float]) -> float:
        """Full jitter: uniform in [0, min(max_delay, base x 2**(failed_attempts - 1))]."""
        ceiling = min(
            self.max_delay_seconds, self.base_delay_seconds * 2.0 ** (failed_attempts - 1)
        )
        return draw() * ceiling


def upstream_client(
    base_url: str,
    *,
    timeout_seconds: float,
    bearer_token: SecretStr | None = None,
) -> httpx.AsyncClient:
    """The client of one outside party; the composition root creates it and closes it on
    shutdown (`await client.aclose()`)."""
    headers = {"Accept": "application/json"}
    if bearer_token is not None:
        headers["Authorization"] = f"Bearer {bearer_token.get_secret_value()}"
    return httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        timeout=httpx.Timeout(timeout_seconds),
        follow_redirects=False,
    )


class _RetryableError(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class HttpUpstream:
    """JSON calls to one party through `client`, with the retry policy above."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        party: str,
        retry: RetryPolicy | None = None,
        draw: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._party = party
        self._retry = retry or RetryPolicy()
        self._draw = draw
        self._sleep = sleep

    @property
    def name(self) -> str:
        """The party this client talks to (bank, chain, provider)."""
        return self._party

    async def call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        payload: JsonObject | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> JsonObject:
        """The JSON object of a 2xx answer. Raises UpstreamRejectedError (HttpRejectedError) or
        UpstreamUnavailableError."""
        attempts = self._retry.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                return await self._once(method, path, payload=payload, headers=headers)
            except _RetryableError as failure:
                log.warning(
                    "%s %s: try %d of %d failed (%s)",
                    self._party,
                    operation,
                    attempt,
                    attempts,
                    failure.reason,
                )
                if attempt == attempts:
                    message = f"{self._party} {operation}: {attempts} tries, last {failure.reason}"
                    raise UpstreamUnavailableError(message) from failure
                await self._sleep(self._pause(attempt, failure.retry_after))
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    async def move(self, path: str, payload: JsonObject, refusals: frozenset[str]) -> JsonObject:
        """A money-moving POST: the booked transfer's JSON, or MovementRefusedError for a
        refusal in `refusals` (nothing moved), or MovementUnknownError for anything else."""
        try:
            return await self.call("POST", path, operation="transfer", payload=payload)
        except HttpRejectedError as refusal:
            if refusal.code in refusals and refusal.status != CONFLICT:
                raise MovementRefusedError(refusal.code, str(refusal)) from None
            raise MovementUnknownError(
                f"{self._party} transfer: HTTP {refusal.status} {refusal.code}"
            ) from None
        except UpstreamError as error:
            raise MovementUnknownError(f"{self._party} transfer: {error}") from None

    async def read_transfer(self, reference: str) -> JsonObject | None:
        """The transfer booked under our reference, or None when the party has none; raises
        MovementUnknownError when it cannot tell."""
        try:
            return await self.call(
                "GET", f"/transfers/{quote(reference, safe='')}", operation="read transfer"
            )
        except HttpRejectedError as refusal:
            if refusal.status == NOT_FOUND and refusal.code == "TRANSFER_NOT_FOUND":
                return None
            raise MovementUnknownError(
                f"{self._party} read transfer: HTTP {refusal.status} {refusal.code}"
            ) from None
        except UpstreamError as error:
            raise MovementUnknownError(f"{self._party} read transfer: {error}") from None

    async def statement(self) -> AsyncIterator[JsonObject]:
        """Every transfer of the party's statement, page after page (`after` / `next`)."""
        after: object = 0
        while after is not None:
            page = await self.call("GET", f"/transfers?after={after}", operation="statement")
            rows = page.get("data")
            if not isinstance(rows, list):
                raise protocol_error(self._party, "a statement page without data")
            for row in rows:
                if isinstance(row, dict):
                    yield row
            after = page.get("next")

    def _pause(self, failed_attempts: int, retry_after: float | None) -> float:
        pause = self._retry.backoff(failed_attempts, self._draw)
        if retry_after is not None:
            pause = max(pause, min(retry_after, self._retry.max_delay_seconds))
        return pause

    async def _once(
        self,
        method: str,
        path: str,
        *,
        payload: JsonObject | None,
        headers: Mapping[str, str] | None,
    ) -> JsonObject:
        try:
            response = await self._client.request(method, path, json=payload, headers=headers)
        except httpx.TimeoutException as error:
            raise _RetryableError(f"timeout: {type(error).__name__}") from error
        except (httpx.NetworkError, httpx.RemoteProtocolError) as error:
            raise _RetryableError(f"network: {type(error).__name__}") from error
        except httpx.HTTPError as error:
            raise UpstreamUnavailableError(
                f"{self._party}: {type(error).__name__}",
            ) from error
        if response.is_success:
            body = _json_object(response)
            if body is None:
                raise protocol_error(self._party, f"{response.status_code} without a JSON object")
            return body
        if response.status_code >= SERVER_ERROR or response.status_code in RETRYABLE_STATUSES:
            raise _RetryableError(
                f"HTTP {response.status_code}",
                retry_after=_retry_after(response),
            )
        body = _json_object(response) or {}
        code = str(body.get("code") or f"HTTP_{response.status_code}")
        message = str(body.get("message") or f"{self._party} refused with {response.status_code}")
        raise HttpRejectedError(code, message, status=response.status_code, body=body)


def _json_object(response: httpx.Response) -> JsonObject | None:
    """The body as a JSON object, numbers as `Decimal` (never float); None if it is not one."""
    try:
        body = json.loads(response.content, parse_float=Decimal)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def protocol_error(party: str, detail: str) -> UpstreamRejectedError:
    """An answer that does not match the contract: permanent (a retry gets the same answer)."""
    return UpstreamRejectedError("UPSTREAM_PROTOCOL_ERROR", f"{party}: {detail}")
