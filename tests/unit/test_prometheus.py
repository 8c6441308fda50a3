"""deploy/prometheus: the scrape configuration and the alert rules parse (promtool check), the
alerts fire when they should (promtool test rules), and every metric they name exists."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from services import metrics
from tests.unit.test_metrics import FAMILIES

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None and not os.environ.get("OTC_REQUIRE_PROMTOOL"),
    reason="promtool is not installed (Debian's prometheus package; deploy/local/promtool "
    "installs it, and .ci/run does, so CI runs these)",
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None, "promtool is required here (OTC_REQUIRE_PROMTOOL is set)"
    return subprocess.run(  # noqa: S603 - promtool with our own files
        [PROMTOOL, *args], cwd=PROMETHEUS, capture_output=True, text=True, check=False
    )


@needs_promtool
def test_the_alert_rules_parse() -> None:
    checked = promtool("check", "rules", "alerts.yml")

    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_promtool
def test_the_scrape_configuration_parses_with_its_rules() -> None:
    checked = promtool("check", "config", "prometheus.yml")

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "alerts.yml" in checked.stdout + checked.stderr


@needs_promtool
def test_the_alerts_fire_as_their_unit_tests_say() -> None:
    tested = promtool("test", "rules", "alerts.test.yml")

    assert tested.returncode == 0, tested.stdout + tested.stderr


@needs_promtool
def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: up ==\n")

    assert promtool("check", "rules", str(broken)).returncode != 0


def exposed_names() -> set[str]:
    names: set[str] = set()
    for family in FAMILIES.values():
        [described] = family.describe()
        base = described.name
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        names.update(base + suffix for suffix in suffixes.get(described.type, [""]))
    return names


def test_every_metric_the_alerts_name_is_one_the_processes_expose() -> None:
    named = set(re.findall(r"\botc_[a-z_]+", (PROMETHEUS / "alerts.yml").read_text()))

    assert named, "the alerts name no metric"
    assert named - exposed_names() == set()
    assert metrics.CHECK_OK in metrics.MONITOR
