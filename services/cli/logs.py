"""`otc logs ORDER_ID`: one order's log lines from every process of the local run, in time order.

Every process writes JSON lines to its file under `.run/logs/` (services/logs.py). An order's
lines are those that name it (`order_id`, or its id in the message), and the gateway's lines of
the same requests (`request_id`): together they show its path from the HTTP request through the
engine, the relay and the workers to `completed`. Lines that are not JSON (a supervisor's
words) are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer

from services.local.places import Places

SHOWN_IDS = ("request_id", "trace_id", "command_id", "event_id")
"""The ids a readable line ends with (the order's own is the same on every line)."""


def read_lines(folder: Path) -> Iterator[dict[str, Any]]:
    """Every JSON line of every `*.log` file in `folder`."""
    for path in sorted(folder.glob("*.log")):
        with path.open(errors="replace") as file:
            for text in file:
                if not text.startswith("{"):
                    continue
                try:
                    line = json.loads(text)
                except ValueError:
                    continue
                if isinstance(line, dict) and "ts" in line:
                    yield line


def order_lines(lines: Iterable[dict[str, Any]], order_id: str) -> list[dict[str, Any]]:
    """The lines about `order_id` and the lines of the requests that carried it, by time."""
    every = list(lines)
    about = [
        line
        for line in every
        if line.get("order_id") == order_id or order_id in str(line.get("message", ""))
    ]
    requests = {line["request_id"] for line in about if line.get("request_id")}
    chosen = {id(line) for line in about}
    chosen.update(id(line) for line in every if line.get("request_id") in requests)
    return sorted((line for line in every if id(line) in chosen), key=lambda line: line["ts"])


def readable(line: dict[str, Any]) -> str:
    ids = " ".join(
        f"{name.removesuffix('_id')}={str(line[name])[:12]}" for name in SHOWN_IDS if line.get(name)
    )
    text = (
        f"{line['ts']}  {line.get('process', '?'):<13} {line.get('level', ''):<7} "
        f"{line.get('message', '')}"
    )
    return f"{text}  [{ids}]" if ids else text


LOGS = Places().logs


def logs_command(
    order_id: Annotated[UUID, typer.Argument(help="the order (its id, the quote id)")],
    folder: Annotated[
        Path, typer.Option("--logs", help="the folder of the processes' log files")
    ] = LOGS,
    *,
    as_json: Annotated[bool, typer.Option("--json", help="the lines as they are, JSON")] = False,
) -> None:
    """One order's log lines from every process of the local run, oldest first."""
    if not folder.is_dir():
        typer.echo(f"no logs in {folder}", err=True)
        raise typer.Exit(2)
    found = order_lines(read_lines(folder), str(order_id))
    if not found:
        typer.echo(f"no line names order {order_id} in {folder}", err=True)
        raise typer.Exit(1)
    for line in found:
        typer.echo(json.dumps(line) if as_json else readable(line))
