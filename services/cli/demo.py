"""`otc demo load`: the demo data of the local run (services/local/demo.py), made and printed."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict

import typer

from services.local.demo import load_demo, save_demo
from services.settings import Settings

demo_app = typer.Typer(no_args_is_help=True, help="Demo data for the local run.")


@demo_app.command("load")
def load_command() -> None:
    """Create the demo customers, resources and keys (again), and print them as JSON."""
    data = asyncio.run(load_demo(Settings()))
    save_demo(data)
    typer.echo(json.dumps(asdict(data), indent=2))
