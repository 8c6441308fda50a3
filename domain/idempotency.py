"""The idempotency-key aggregate: one per customer and `Idempotency-Key`, saved in the same
transaction as the events of the command it guards, so that a key can never be half-used."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import DomainError, ErrorCode

IDEMPOTENCY_NAMESPACE = UUID("6f1d7a8e-3c1b-5b7e-9a51-2f0c8d6e4b21")


def key_id(customer_id: UUID, key: UUID) -> UUID:
    return uuid5(IDEMPOTENCY_NAMESPACE, f"{customer_id}:{key}")


def fingerprint(payload: dict[str, object]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyKey(Aggregate):
    class Used(Aggregate.Created):
        customer_id: UUID
        key: UUID
        fingerprint: str
        command_id: UUID
        reply: dict[str, Any]

        def apply(self, aggregate: Any) -> None:  # noqa: ANN401 - eventsourcing's signature
            record: IdempotencyKey = aggregate
            record.customer_id = self.customer_id
            record.key = self.key
            record.fingerprint = self.fingerprint
            record.command_id = self.command_id
            record.reply = self.reply

    customer_id: UUID
    key: UUID
    fingerprint: str
    command_id: UUID
    reply: dict[str, Any]

    def __init__(self) -> None:
        """State is set by the Used event."""

    @classmethod
    def use(  # noqa: PLR0913 - the facts of one use of a key
        cls,
        *,
        customer_id: UUID,
        key: UUID,
        fingerprint: str,
        command_id: UUID,
        reply: dict[str, Any],
        now: datetime,
    ) -> IdempotencyKey:
        return cls._create(
            cls.Used,
            id=key_id(customer_id, key),
            timestamp=now,
            customer_id=customer_id,
            key=key,
            fingerprint=fingerprint,
            command_id=command_id,
            reply=reply,
        )

    def check_same_request(self, other_fingerprint: str) -> None:
        if other_fingerprint != self.fingerprint:
            raise DomainError(
                ErrorCode.IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was used with a different request",
            )
