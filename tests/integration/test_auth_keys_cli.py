"""`otc keys` against a fresh database of each test's own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import pytest
from typer.testing import CliRunner, Result

from services.auth.key_store import ApiKeyStore
from services.auth.principal import Principal, Scope
from services.cli import app
from services.resources.port import PLATFORM_CUSTOMER_ID
from services.settings import Settings

pytestmark = pytest.mark.integration

REFUSED = 2

Otc = Callable[..., Result]
Json = dict[str, Any]


@pytest.fixture
def otc(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Otc:
    monkeypatch.setenv("OTC_PG_DBNAME", settings.pg_dbname)
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, ["keys", *args])

    return run


def ok(result: Result) -> Any:  # noqa: ANN401 - a JSON document, object or list
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def verify(settings: Settings, plaintext: str) -> Principal | None:
    async def check() -> Principal | None:
        async with ApiKeyStore(settings) as store:
            return await store.verify(plaintext)

    return asyncio.run(check())


def create_key(otc: Otc, customer: UUID, name: str = "CI") -> Json:
    created: Json = ok(
        otc(
            "create",
            "--customer",
            str(customer),
            "--scope",
            Scope.READ,
            "--scope",
            Scope.WRITE,
            "--name",
            name,
        )
    )
    return created


def test_create_prints_the_key_once_with_its_record(otc: Otc, settings: Settings) -> None:
    customer = uuid4()

    created = create_key(otc, customer)

    assert created == {
        "key": created["key"],
        "id": created["id"],
        "customerId": str(customer),
        "name": "CI",
        "scopes": [Scope.READ, Scope.WRITE],
        "prefix": created["prefix"],
        "createdAt": created["createdAt"],
        "revokedAt": None,
        "lastUsedAt": None,
    }
    assert created["key"].startswith(f"otc_{created['prefix']}_")
    principal = verify(settings, created["key"])
    assert principal is not None
    assert principal.customer_id == customer


def test_list_never_shows_a_key(otc: Otc) -> None:
    alice, bob = uuid4(), uuid4()
    first = create_key(otc, alice, "one")
    create_key(otc, bob, "two")

    result = otc("list", "--customer", str(alice))

    assert ok(result) == [{k: v for k, v in first.items() if k != "key"}]
    assert first["key"].split("_", 2)[2] not in result.stdout
    assert len(ok(otc("list"))) == 2


def test_create_operator_makes_a_platform_key_that_operates_and_reads(
    otc: Otc, settings: Settings
) -> None:
    created = ok(otc("create-operator", "--name", "Alice (ops)"))

    assert created["customerId"] == str(PLATFORM_CUSTOMER_ID)
    assert created["scopes"] == [Scope.OPERATE, Scope.READ]
    principal = verify(settings, created["key"])
    assert principal is not None
    assert principal.is_operator


def test_revoke_prints_the_revoked_key_and_it_stops_working(otc: Otc, settings: Settings) -> None:
    created = create_key(otc, uuid4())

    revoked = ok(otc("revoke", created["id"]))

    assert revoked["id"] == created["id"]
    assert revoked["revokedAt"] is not None
    assert "key" not in revoked
    assert verify(settings, created["key"]) is None
    assert ok(otc("list"))[0]["revokedAt"] == revoked["revokedAt"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["create", "--customer", str(uuid4()), "--scope", Scope.OPERATE, "--name", "x"],
            "only the platform customer",
        ),
        (
            [
                "create",
                "--customer",
                str(PLATFORM_CUSTOMER_ID),
                "--scope",
                Scope.READ,
                "--name",
                "x",
            ],
            "operator keys",
        ),
        (["create", "--customer", str(uuid4()), "--scope", Scope.READ, "--name", " "], "empty"),
        (
            ["create", "--customer", str(uuid4()), "--scope", "otc-exchanges:admin", "--name", "x"],
            "admin",
        ),
        (["create", "--customer", str(uuid4()), "--name", "x"], "--scope"),
        (["create", "--customer", "not-a-uuid", "--scope", Scope.READ, "--name", "x"], "UUID"),
        (["revoke", str(uuid4())], "not found"),
        (["revoke", "not-a-uuid"], "UUID"),
    ],
)
def test_bad_input_exits_2_with_a_message_on_stderr_and_writes_nothing(
    otc: Otc, args: list[str], message: str
) -> None:
    result = otc(*args)

    assert result.exit_code == REFUSED
    assert message in result.stderr
    assert result.stdout == ""
    assert ok(otc("list")) == []


def test_missing_database_password_exits_2_naming_the_setting(
    otc: Otc, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTC_PG_PASSWORD")

    result = otc("list")

    assert result.exit_code == REFUSED
    assert "OTC_PG_PASSWORD" in result.stderr
