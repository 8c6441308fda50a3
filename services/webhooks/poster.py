"""An attempt's HTTP POST (`HttpPoster`, the sender's `Post` in the dispatcher): through
connection pools that go only where the SSRF guard allows (services/webhooks/ssrf.py), and what
came back as an `Answer` (status, error, Retry-After), whatever went wrong."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import UTC, datetime

import httpcore

from services.webhooks.schedule import Answer, parse_retry_after
from services.webhooks.ssrf import GuardedBackend, UrlGuard, UrlNotAllowedError, parse_endpoint_url

RESPONSE_BYTES_READ = 64 * 1024


class HttpPoster:
    """POSTs through httpcore connection pools whose connections go only where the guard
    allows: https anywhere public, plain http to loopback only (when allowed). Redirects are not
    followed (a 3xx is a failed attempt); at most 64 KiB of an answer is read.

    One small pool per endpoint URL, of `per_url` connections (the bound per endpoint): it keeps
    each receiver's connections alive between attempts, and keeps httpcore's pool bookkeeping,
    which grows with the square of a pool's connections, cheap. The least recently used pools
    beyond `max_pools` are closed."""

    def __init__(
        self,
        guard: UrlGuard,
        *,
        timeout_seconds: float,
        per_url: int,
        max_pools: int = 512,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self._per_url = per_url
        self._max_pools = max_pools
        self._https = GuardedBackend(guard, plain_http=False)
        self._http = GuardedBackend(guard, plain_http=True)
        self._pools: OrderedDict[str, httpcore.AsyncConnectionPool] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    def _pool(self, url: str, scheme: str) -> httpcore.AsyncConnectionPool:
        pool = self._pools.get(url)
        if pool is None:
            pool = httpcore.AsyncConnectionPool(
                max_connections=self._per_url,
                keepalive_expiry=30.0,
                network_backend=self._http if scheme == "http" else self._https,
            )
            self._pools[url] = pool
            while len(self._pools) > self._max_pools:
                _, evicted = self._pools.popitem(last=False)
                task = asyncio.create_task(evicted.aclose())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        self._pools.move_to_end(url)
        return pool

    async def __call__(self, url: str, headers: dict[str, str], body: bytes) -> Answer:
        try:
            target = parse_endpoint_url(url)
            pool = self._pool(url, target.scheme)
            async with asyncio.timeout(self.timeout_seconds):
                return await self._post(pool, url, headers, body)
        except UrlNotAllowedError as refused:
            return Answer(None, f"not sent: {refused}")
        except TimeoutError:
            return Answer(None, f"no answer within {self.timeout_seconds:g} s")
        except httpcore.ConnectError as error:
            return Answer(None, f"could not connect: {error or 'refused'}")
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException) as error:
            return Answer(None, f"{type(error).__name__}: {error}"[:500])

    async def _post(
        self, pool: httpcore.AsyncConnectionPool, url: str, headers: dict[str, str], body: bytes
    ) -> Answer:
        async with pool.stream(
            "POST", url, headers=list(headers.items()), content=body
        ) as response:
            read = 0
            async for chunk in response.aiter_stream():
                read += len(chunk)
                if read >= RESPONSE_BYTES_READ:
                    break
            retry_after = None
            for name, value in response.headers:
                if name.lower() == b"retry-after":
                    retry_after = parse_retry_after(value.decode("latin-1"), datetime.now(UTC))
            status = response.status
        error = None if 200 <= status < 300 else f"HTTP {status}"  # noqa: PLR2004 - the 2xx range
        return Answer(status, error, retry_after)

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        await asyncio.gather(*(pool.aclose() for pool in pools), *self._closing)
