"""`otc logs ORDER_ID`: an order's lines from every process's log, with its requests' lines,
in time order; other orders' lines and text that is not JSON left out."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from typer.testing import CliRunner

from services.cli import app
from services.cli.logs import order_lines, read_lines, readable

ORDER = str(uuid.uuid4())
OTHER = str(uuid.uuid4())


def line(ts: str, process: str, message: str, **ids: str) -> str:
    body = {"ts": ts, "level": "INFO", "process": process, "logger": "otc", "message": message}
    return json.dumps({**body, **ids})


def write_logs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gateway.log").write_text(
        "\n".join(
            [
                line(
                    "2026-01-01T00:00:00.100Z",
                    "gateway",
                    "POST /otc-exchanges/quote 200",
                    request_id="req-1",
                    order_id=ORDER,
                ),
                line(
                    "2026-01-01T00:00:00.900Z",
                    "gateway",
                    f"GET /otc-exchanges/{ORDER} 200",
                    request_id="req-2",
                ),
                line(
                    "2026-01-01T00:00:00.950Z",
                    "gateway",
                    "reading the read model",
                    request_id="req-2",
                ),
                line(
                    "2026-01-01T00:00:01.000Z",
                    "gateway",
                    "POST /otc-exchanges 201",
                    request_id="req-3",
                    order_id=OTHER,
                ),
                "INFO:     a line that is not JSON " + ORDER,
            ]
        )
        + "\n"
    )
    (folder / "engine.log").write_text(
        line(
            "2026-01-01T00:00:00.050Z",
            "engine",
            "RequestQuote ok: quoted",
            order_id=ORDER,
            command_id="c-1",
            trace_id="req-1",
        )
        + "\n"
        + line("2026-01-01T00:00:00.500Z", "engine", "RequestQuote ok: quoted", order_id=OTHER)
        + "\n"
    )
    (folder / "usdc-chain.log").write_text(
        line("2026-01-01T00:00:02.000Z", "usdc-chain", "usdc-chain: payout done", order_id=ORDER)
        + "\n"
    )
    return folder


def test_an_orders_lines_come_from_every_process_in_time_order(tmp_path: Path) -> None:
    found = order_lines(read_lines(write_logs(tmp_path)), ORDER)

    assert [(one["process"], one["message"]) for one in found] == [
        ("engine", "RequestQuote ok: quoted"),
        ("gateway", "POST /otc-exchanges/quote 200"),
        ("gateway", f"GET /otc-exchanges/{ORDER} 200"),
        ("gateway", "reading the read model"),
        ("usdc-chain", "usdc-chain: payout done"),
    ]


def test_a_line_reads_as_time_process_level_message_and_ids() -> None:
    text = readable(
        json.loads(
            line(
                "2026-01-01T00:00:00.050Z",
                "engine",
                "RequestQuote ok",
                order_id=ORDER,
                command_id="c-1",
                trace_id="req-1",
            )
        )
    )

    assert (
        text == "2026-01-01T00:00:00.050Z  engine        INFO    RequestQuote ok"
        "  [trace=req-1 command=c-1]"
    )


def test_the_command_prints_the_lines_and_fails_for_an_order_no_line_names(
    tmp_path: Path,
) -> None:
    folder = write_logs(tmp_path / "logs")
    runner = CliRunner()

    shown = runner.invoke(app, ["logs", ORDER, "--logs", str(folder)])
    unknown = runner.invoke(app, ["logs", str(uuid.uuid4()), "--logs", str(folder)])
    as_json = runner.invoke(app, ["logs", ORDER, "--logs", str(folder), "--json"])

    assert shown.exit_code == 0, shown.output
    assert len(shown.output.splitlines()) == 5
    assert "usdc-chain: payout done" in shown.output.splitlines()[-1]
    assert unknown.exit_code == 1
    assert [json.loads(text)["process"] for text in as_json.output.splitlines()] == [
        "engine",
        "gateway",
        "gateway",
        "gateway",
        "usdc-chain",
    ]
