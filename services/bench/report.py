"""`--record`: a benchmark's figures written into `docs/benchmarks.md` with what they depend on
(the machine, the commit, the settings and the command that measured them), so the README can
quote measured numbers and say where they came from.

Each benchmark owns one section of the file, between `<!-- bench:NAME -->` and
`<!-- /bench:NAME -->`; recording it again replaces that section and leaves the others.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from services.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Figures printed by the `otc bench` commands and recorded with `--record`; each section says\n"
    "the command, the machine, the commit and the settings it was measured with. They are not\n"
    "tests. On the development machine every process of the system, PostgreSQL, Kafka and the\n"
    "benchmark's own clients share the same cores.\n"
)
SETTINGS_SHOWN = ("engine_batch_size", "kafka_partitions", "pg_pool_size", "upstreams")


def machine() -> str:
    model = "unknown CPU"
    with_cpuinfo = Path("/proc/cpuinfo")
    if with_cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", with_cpuinfo.read_text())
        model = found.group(1).strip() if found else model
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total = re.search(r"MemTotal:\s*(\d+) kB", meminfo.read_text())
        memory = f", {int(total.group(1)) / 1024 / 1024:.0f} GiB" if total else ""
    return (
        f"{os.cpu_count()} cores ({model}){memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(  # noqa: S603 - git, fixed arguments
            ["git", *args],  # noqa: S607 - whichever git is on PATH
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" (with uncommitted changes)" if git("status", "--porcelain", "-uno") else "")


def section(name: str, command: str, lines: list[str], settings: Settings) -> str:
    shown = ", ".join(f"{key}={getattr(settings, key)}" for key in SETTINGS_SHOWN)
    return "\n".join(
        [
            f"<!-- bench:{name} -->",
            f"## {name}",
            "",
            f"`{command}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"- machine: {machine()}",
            f"- commit: {commit()}",
            f"- settings: {shown}",
            "",
            "```",
            *lines,
            "```",
            f"<!-- /bench:{name} -->",
        ]
    )


def replace_section(document: str, name: str, text: str) -> str:
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.DOTALL)
    if pattern.search(document):
        return pattern.sub(lambda _: text, document)
    return document.rstrip("\n") + "\n\n" + text + "\n"


def write_section(
    name: str, command: str, lines: list[str], settings: Settings, path: Path = DOCUMENT
) -> None:
    document = path.read_text() if path.exists() else HEADER
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replace_section(document, name, section(name, command, lines, settings)))
