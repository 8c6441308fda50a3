"""`otc bench provider`: rounds of concurrent quotes against the liquidity provider sandbox (one
it starts on a scratch database, or a running one at `--url`), as the engine asks for them: a
`POST /currency-exchange-quotes` with a new `idempotency-key` each. It prints the time of a
round and the per-quote latency p50/p99.

The client is a minimal HTTP/1.1 one (keep-alive sockets, one per quote in flight, requests
written by hand), so that what is measured is the sandbox and not an HTTP client sharing its
cores: httpx spends more CPU on a request than the sandbox does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from services.bench.tools import percentile, scratch_database
from services.bench.webhooks import free_port
from services.settings import Settings

TOKEN = "bench-provider-token-0123456789"  # noqa: S105 - registered on a scratch sandbox
SCOPE = "partner.currency-exchange-quote.create"
QUOTE = json.dumps(
    {
        "sell": "EUR",
        "buy": "USDC",
        "amount": {"amount": "1000.00", "currency": "EUR", "feePolicy": "INCLUSIVE"},
    }
).encode()
OK = 200
CREATED = 201

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass
class Figures:
    concurrency: int
    rounds: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def lines(self) -> list[str]:
        quotes = len(self.latencies)
        median, fastest, slowest = (
            statistics.median(self.rounds) * 1000,
            min(self.rounds) * 1000,
            max(self.rounds) * 1000,
        )
        p50, p99 = (percentile(self.latencies, q) * 1000 for q in (0.5, 0.99))
        rounds = f"{len(self.rounds)} rounds of {self.concurrency} concurrent quotes"
        rate = quotes / sum(self.rounds)
        spread = f"median; min {fastest:.0f}, max {slowest:.0f}"
        return [
            f"{rounds}: a round takes {median:.0f} ms ({spread}); {rate:.0f} quotes/s",
            f"per quote p50 {p50:.1f} ms, p99 {p99:.1f} ms",
        ]


def http_request(host: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
    lines += [f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def exchange(stream: Stream, request: bytes) -> tuple[int, bytes]:
    """One request on a keep-alive connection: the status and the body."""
    reader, writer = stream
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length")
    )
    return int(lines[0].split(b" ", 2)[1]), await reader.readexactly(length)


async def quote(host: str, stream: Stream, latencies: list[float]) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "idempotency-key": str(uuid.uuid4())}
    request = http_request(host, "/currency-exchange-quotes", QUOTE, headers)
    started = time.perf_counter()
    status, body = await exchange(stream, request)
    latencies.append(time.perf_counter() - started)
    if status != OK:
        raise RuntimeError(f"quote refused with {status}: {body[:200]!r}")


async def drive(url: str, concurrency: int, rounds: int) -> Figures:
    address = urlsplit(url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    streams = [await asyncio.open_connection(host, port) for _ in range(concurrency)]
    try:
        registration = json.dumps({"token": TOKEN, "scopes": [SCOPE]}).encode()
        status, body = await exchange(
            streams[0], http_request(host, "/admin/tokens", registration, {})
        )
        if status != CREATED:
            raise RuntimeError(f"token not registered ({status}): {body[:200]!r}")
        await asyncio.gather(*(quote(host, s, []) for s in streams))  # warm-up: pool, caches
        figures = Figures(concurrency)
        for _ in range(rounds):
            started = time.perf_counter()
            await asyncio.gather(*(quote(host, s, figures.latencies) for s in streams))
            figures.rounds.append(time.perf_counter() - started)
        return figures
    finally:
        for _, writer in streams:
            writer.close()


@contextlib.contextmanager
def sandbox_process(settings: Settings, port: int) -> Iterator[str]:
    env = {**os.environ, **settings.to_env(), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(  # noqa: S603 - our own module, fixed interpreter
        [sys.executable, "-m", "services.local.sandbox", "provider", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def started(url: str) -> None:
    deadline = time.monotonic() + 30
    address = urlsplit(url)
    while True:
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection(address.hostname, address.port)
            writer.write(f"GET /health HTTP/1.1\r\nHost: {address.netloc}\r\n\r\n".encode())
            answered = await reader.readline()
            writer.close()
            if b" 200 " in answered:
                return
        if time.monotonic() > deadline:
            raise RuntimeError("the provider sandbox did not start")
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def provider_at(settings: Settings, url: str | None) -> AsyncIterator[str]:
    if url is not None:
        yield url
        return
    with (
        scratch_database(settings, "bench_provider") as scratch,
        sandbox_process(scratch, free_port()) as started_url,
    ):
        await started(started_url)
        yield started_url


async def bench_provider(
    settings: Settings, *, url: str | None, concurrency: int, rounds: int
) -> Figures:
    async with provider_at(settings, url) as found:
        return await drive(found, concurrency, rounds)
