"""The one way an `otc` sub-command works on a PostgreSQL store: settings from the environment,
the schema created if missing, JSON on stdout. A refusal goes to stderr with exit code 2 and
writes nothing; an unreachable database exits with 1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import typer
from psycopg import OperationalError
from psycopg_pool import PoolTimeout
from pydantic import ValidationError

from services.pg import PooledStore
from services.settings import Settings

EXIT_REFUSED = 2
EXIT_UNAVAILABLE = 1

S = TypeVar("S", bound=PooledStore)
T = TypeVar("T")


def run_on_store(
    store: Callable[[Settings], S],
    refusals: tuple[type[Exception], ...],
    work: Callable[[S], Awaitable[T]],
    view: Callable[[T], object],
) -> None:
    try:
        settings = Settings()
    except ValidationError as exc:
        fields = ", ".join(f"OTC_{error['loc'][0]}".upper() for error in exc.errors())
        fail(f"missing or invalid settings: {fields} (see .run/stack.env)", EXIT_REFUSED)

    async def session() -> T:
        async with store(settings) as opened:
            await opened.create_schema()
            return await work(opened)

    try:
        result = asyncio.run(session())
    except refusals as exc:
        fail(str(exc), EXIT_REFUSED)
    except (OperationalError, PoolTimeout) as exc:
        fail(f"database unavailable: {exc}", EXIT_UNAVAILABLE)
    typer.echo(json.dumps(view(result), indent=2))


def fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
