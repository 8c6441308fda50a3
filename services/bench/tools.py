"""What the benchmarks share: percentiles of their figures, and a scratch database of their own
on the running stack (created for the run, dropped after it)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg
from psycopg import sql

from services.settings import Settings


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.contextmanager
def scratch_database(settings: Settings, prefix: str) -> Iterator[Settings]:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield settings.model_copy(update={"pg_dbname": name})
    finally:
        with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
