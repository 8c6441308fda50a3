"""Serving a sandbox with uvicorn on loopback: in the foreground (the CLI) or in the background
of a running event loop (tests and in-process end-to-end runs)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_SECONDS = 10.0


def run(app: FastAPI, port: int) -> None:
    uvicorn.run(app, host=LOOPBACK, port=port, log_level="info", log_config=None)


@asynccontextmanager
async def serving(app: FastAPI, port: int = 0) -> AsyncIterator[str]:
    """Serves `app` on 127.0.0.1 (a free port when `port` is 0) until the block ends; yields the
    base URL. The app's lifespan runs: its database opens before the first request."""
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that name it, and without
    # it every response waits out a delayed ACK (about 40 ms on loopback).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, port))
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False),
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT_SECONDS):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("the sandbox stopped while starting")
                await asyncio.sleep(0.01)
        yield f"http://{LOOPBACK}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
