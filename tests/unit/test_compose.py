"""deploy/compose.yaml grants what services/kafka_acls.py grants, to the same users."""

from __future__ import annotations

import re
from pathlib import Path

from services.kafka_acls import ADMIN, Grant, Principal, grants
from services.settings import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"


def compose_grants() -> set[Grant]:
    """The `grant USER OPERATION PATTERN RESOURCE...` lines of the kafka-setup service."""
    found = set()
    for match in re.finditer(
        r"^\s+grant (\S+) (\S+) (\S+) (.+)$", COMPOSE.read_text(), re.MULTILINE
    ):
        user, operation, pattern, resources = match.groups()
        for resource in resources.split():
            kind, name = resource.split(":", 1)
            found.add(Grant(f"User:{user}", kind.upper(), pattern.upper(), name, operation.upper()))
    return found


def test_compose_grants_the_acl_table() -> None:
    assert compose_grants() == set(grants(Settings.model_construct()))


def test_compose_makes_every_scram_user() -> None:
    match = re.search(r"for user in ([^;]+); do", COMPOSE.read_text())

    assert match is not None
    assert match.group(1).split() == [ADMIN, *Principal]
