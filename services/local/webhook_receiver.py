"""A webhook receiver on loopback, for trying webhooks locally, for tests and for the benchmark:
`python -m services.local.webhook_receiver --port 8610 --secret whsec_...`.

It answers every POST with a status of its choice (204 by default), verifies the signature
when it knows the secret, and prints one JSON line per webhook. It is a minimal HTTP/1.1 server
(keep-alive, Content-Length bodies), nothing more: never put it on a public address.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

from services.webhooks.signing import verify

MAX_BODY = 1024 * 1024
REASONS = {200: "OK", 204: "No Content", 410: "Gone", 500: "Internal Server Error"}


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    status: int
    """What the receiver answered."""

    @property
    def message(self) -> dict[str, object]:
        found: dict[str, object] = json.loads(self.body)
        return found


@dataclass
class LocalReceiver:
    """Answers `status` (and `retry_after`, if set); `received` keeps every request. `stop`
    closes the port and every connection, so that connecting is refused until `start`."""

    port: int = 0
    status: int = 204
    retry_after: str | None = None
    delay: float = 0.0
    """Seconds to think before answering."""
    secrets: list[str] = field(default_factory=list)
    echo: bool = False
    keep: bool = True
    """Keep every request in `received` (a long-running receiver does not)."""
    received: list[Received] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for handler in list(self._handlers):
                handler.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None  # noqa: S101 - a connection's handler runs in a task
        self._handlers.add(handler)
        try:
            while await self._one(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            # Stopped: end the connection quietly (asyncio's stream callback of Python 3.11
            # reports a cancelled handler as an error).
            return
        finally:
            self._handlers.discard(handler)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = min(int(headers.get("content-length", "0") or 0), MAX_BODY)
        body = await reader.readexactly(length)
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.status
        if self.keep:
            self.received.append(Received(headers, body, status))
        if self.echo:
            self._print(headers, body, status)
        extra = f"retry-after: {self.retry_after}\r\n" if self.retry_after else ""
        reason = REASONS.get(status, "Status")
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\n{extra}\r\n".encode("latin-1")
        )
        await writer.drain()
        return headers.get("connection", "").lower() != "close"

    def _print(self, headers: dict[str, str], body: bytes, status: int) -> None:
        try:
            message = json.loads(body)
        except ValueError:
            message = {}
        data = message.get("data") or {}
        line = {
            "webhookId": headers.get("webhook-id"),
            "type": message.get("type"),
            "orderId": data.get("id"),
            "status": data.get("status"),
            "verified": verify(self.secrets, headers, body, int(time.time()))
            if self.secrets
            else None,
            "answered": status,
        }
        print(json.dumps(line), flush=True)  # noqa: T201 - the receiver prints what it gets


async def serve(receiver: LocalReceiver) -> None:
    await receiver.start()
    print(f"receiving on {receiver.url}", flush=True)  # noqa: T201
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.local.webhook_receiver")
    parser.add_argument("--port", type=int, default=8610)
    parser.add_argument("--status", type=int, default=204, help="what to answer")
    parser.add_argument("--secret", action="append", default=[], help="whsec_... to verify with")
    parser.add_argument("--quiet", action="store_true", help="print nothing, keep nothing")
    args = parser.parse_args()
    receiver = LocalReceiver(
        port=args.port, status=args.status, secrets=args.secret, echo=not args.quiet
    )
    receiver.keep = not args.quiet
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(receiver))


if __name__ == "__main__":
    main()
