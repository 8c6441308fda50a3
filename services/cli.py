"""`otc`: the operators' command line. Every sub-command prints JSON (or figures, for bench)."""

from __future__ import annotations

import json

import typer

from services.audit_cli import audit_app
from services.auth.cli import keys_app
from services.bench import bench_app
from services.check_cli import check_app
from services.command_cli import command_app
from services.demo import demo_app
from services.dlq_cli import dlq_app
from services.projector.rebuild import projections_app
from services.resources.cli import resources_app
from services.settings import Settings
from services.webhooks.bench import webhooks_command
from services.webhooks.cli import webhooks_app

app = typer.Typer(no_args_is_help=True, help="OTC order engine: operator commands.")
app.add_typer(resources_app, name="resources")
app.add_typer(bench_app, name="bench")
bench_app.command("webhooks")(webhooks_command)
app.add_typer(command_app, name="command")
app.add_typer(check_app, name="check")
app.add_typer(audit_app, name="audit")
app.add_typer(demo_app, name="demo")
app.add_typer(projections_app, name="projections")
app.add_typer(keys_app, name="keys")
app.add_typer(dlq_app, name="dlq")
app.add_typer(webhooks_app, name="webhooks")


@app.command("settings")
def show_settings() -> None:
    """Print the effective settings as JSON, secrets masked."""
    typer.echo(json.dumps(Settings().model_dump(mode="json"), indent=2))


@app.callback()
def root() -> None:
    """OTC order engine."""


def main() -> None:
    app()
