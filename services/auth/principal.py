"""Who is calling: a customer (or the platform's operators) and the scopes granted to them."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal
from uuid import UUID

from services.resources.port import PLATFORM_CUSTOMER_ID


class Scope(StrEnum):
    READ = "otc-exchanges:read"
    WRITE = "otc-exchanges:write"
    OPERATE = "otc-exchanges:operate"


KNOWN_SCOPES = frozenset(scope.value for scope in Scope)

Via = Literal["api-key", "jwt"]


@dataclass(frozen=True)
class OperatorIdentity:
    """The person behind an operator key or token: what every operator event records."""

    id: UUID
    name: str


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `subject` is a non-secret identifier for logs: the key's id for
    an API key, the `sub` claim for a JWT.

    Only the platform customer may hold `otc-exchanges:operate`, and only together with the
    operator it identifies (`operator`); construction refuses anything else, so no principal in
    the process can break those rules.
    """

    customer_id: UUID
    scopes: frozenset[str]
    subject: str
    via: Via
    operator: OperatorIdentity | None = None

    def __post_init__(self) -> None:
        if operator_scope_misplaced(self.customer_id, self.scopes):
            raise ValueError(f"only the platform customer may hold {Scope.OPERATE}")
        if (Scope.OPERATE in self.scopes) != (self.operator is not None):
            raise ValueError(f"{Scope.OPERATE} goes with the operator it identifies, and only it")

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def is_operator(self) -> bool:
        return self.has(Scope.OPERATE)


def operator_scope_misplaced(customer_id: UUID, scopes: Collection[str]) -> bool:
    return Scope.OPERATE in scopes and customer_id != PLATFORM_CUSTOMER_ID
