"""`otc`: the operators' command line. Every sub-command prints JSON (or figures, for bench).

One module per sub-command group: `otc audit` is services/cli/audit.py, `otc keys`
services/cli/keys.py, and so on; this module puts them under one root."""

from __future__ import annotations

import json

import typer

from services.cli.audit import audit_app
from services.cli.bench import bench_app
from services.cli.check import check_app
from services.cli.command import command_app
from services.cli.demo import demo_app
from services.cli.dlq import dlq_app
from services.cli.keys import keys_app
from services.cli.logs import logs_command
from services.cli.projections import projections_app
from services.cli.resources import resources_app
from services.cli.webhooks import webhooks_app
from services.settings import Settings

app = typer.Typer(no_args_is_help=True, help="OTC order engine: operator commands.")
app.add_typer(resources_app, name="resources")
app.add_typer(bench_app, name="bench")
app.add_typer(command_app, name="command")
app.add_typer(check_app, name="check")
app.add_typer(audit_app, name="audit")
app.add_typer(demo_app, name="demo")
app.add_typer(projections_app, name="projections")
app.add_typer(keys_app, name="keys")
app.add_typer(dlq_app, name="dlq")
app.add_typer(webhooks_app, name="webhooks")
app.command("logs")(logs_command)


@app.command("settings")
def show_settings() -> None:
    """Print the effective settings as JSON, secrets masked."""
    typer.echo(json.dumps(Settings().model_dump(mode="json"), indent=2))


@app.callback()
def root() -> None:
    """OTC order engine."""


def main() -> None:
    app()
