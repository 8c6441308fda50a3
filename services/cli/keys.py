"""`otc keys`: API keys of customers and operators, as JSON on stdout.

A new key's plaintext is printed once, by `create` or `create-operator`, and never again: the
store keeps only its hash. Refused input goes to stderr with exit code 2 and writes nothing; an
unreachable database exits with 1. Every command creates the `auth` schema first if it is missing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar
from uuid import UUID

import typer

from services.auth.key_store import ApiKeyStore
from services.auth.keys import ApiKeyError, ApiKeyRecord
from services.auth.principal import Scope
from services.cli.on_store import run_on_store

keys_app = typer.Typer(
    no_args_is_help=True,
    help="API keys: created with their scopes, shown once, stored as a hash, revoked for good.",
)

Json = dict[str, object]
T = TypeVar("T")


NameOption = Annotated[str, typer.Option("--name", help="What the key is for, to recognise it.")]


@keys_app.command("create")
def create(
    *,
    customer: Annotated[UUID, typer.Option("--customer", help="The customer the key acts for.")],
    scopes: Annotated[list[Scope], typer.Option("--scope", help="A granted scope; repeatable.")],
    name: NameOption,
) -> None:
    """Create a customer's key; its plaintext is printed this once."""
    _run(lambda store: store.create(customer, scopes, name), _issued_view)


@keys_app.command("create-operator")
def create_operator(
    *,
    name: Annotated[str, typer.Option("--name", help="The operator's full name.")],
    operator: Annotated[
        UUID | None,
        typer.Option("--operator", help="Another key for this existing operator (its id)."),
    ] = None,
) -> None:
    """Create an operator key for a named person (operate and read scopes), printed this once.
    Every operator event records the person; without --operator a new operator is created."""
    _run(lambda store: store.create_operator_key(name, operator_id=operator), _issued_view)


@keys_app.command("list")
def list_keys(*, customer: Annotated[UUID | None, typer.Option("--customer")] = None) -> None:
    """Every key, or one customer's, revoked ones included, oldest first; never a secret."""
    _run(lambda store: store.list(customer), lambda records: [_view(r) for r in records])


@keys_app.command("revoke")
def revoke(*, key_id: Annotated[UUID, typer.Argument(metavar="ID")]) -> None:
    """Revoke a key for good; gateways refuse it within OTC_API_KEY_CACHE_SECONDS (5 s), the
    time they trust a key they verified."""
    _run(lambda store: store.revoke(key_id), _view)


def _run(work: Callable[[ApiKeyStore], Awaitable[T]], view: Callable[[T], object]) -> None:
    run_on_store(ApiKeyStore, (ApiKeyError,), work, view)


def _issued_view(issued: tuple[str, ApiKeyRecord]) -> Json:
    plaintext, record = issued
    return {"key": plaintext, **_view(record)}


def _view(record: ApiKeyRecord) -> Json:
    return {
        "id": str(record.id),
        "customerId": str(record.customer_id),
        "name": record.name,
        "scopes": sorted(record.scopes),
        "prefix": record.prefix,
        "createdAt": record.created_at.isoformat(),
        "revokedAt": None if record.revoked_at is None else record.revoked_at.isoformat(),
        "lastUsedAt": None if record.last_used_at is None else record.last_used_at.isoformat(),
        **(
            {}
            if record.operator is None
            else {"operatorId": str(record.operator.id), "operatorName": record.operator.name}
        ),
    }
