"""Idempotency keys, the whole rule in one place (DESIGN.md section 6).

- A key is a UUID v4 (`parse_key`), scoped to its customer (`key_id`).
- It names one request: the command's type, order and payload, never its envelope (command id,
  time, actor); a quote request is named without its order id, since a retried quote carries a new
  one (`request_payload`, `request_fingerprint`).
- The first answer under a key is kept and replayed; the same key for another request is
  IDEMPOTENCY_KEY_REUSED (`IdempotencyKey.check_same_request`).
- An answer a retry may change (a party or the platform failing) is never kept (`keeps`).
- The key aggregate is saved in the same transaction as the events of the command it guards, so
  that a key can never be half-used.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.commands import Command, RequestQuote
from domain.errors import DomainError, ErrorCode

IDEMPOTENCY_NAMESPACE = UUID("6f1d7a8e-3c1b-5b7e-9a51-2f0c8d6e4b21")


def key_id(customer_id: UUID, key: UUID) -> UUID:
    return uuid5(IDEMPOTENCY_NAMESPACE, f"{customer_id}:{key}")


UUID_VERSION = 4
ENVELOPE = frozenset({"command_id", "customer_id", "actor", "idempotency_key", "issued_at"})
TRANSIENT_CODES = frozenset(
    {
        ErrorCode.BALANCE_UNAVAILABLE,
        ErrorCode.QUOTE_UNAVAILABLE,
        ErrorCode.COMMAND_TIMEOUT,
        ErrorCode.INTERNAL_ERROR,
        ErrorCode.SERVICE_UNAVAILABLE,
        ErrorCode.IDEMPOTENCY_KEY_IN_USE,
    },
)
"""Failures of an outside party or of the platform: a retry may succeed, so their answers are
never kept under a key."""


def parse_key(text: str | None) -> UUID | None:
    """The key of an `Idempotency-Key` header (None when absent); anything but a UUID v4 in its
    canonical form is IDEMPOTENCY_KEY_INVALID."""
    if text is None:
        return None
    try:
        key = UUID(text)
    except ValueError:
        key = None
    if key is None or key.version != UUID_VERSION or str(key) != text.lower():
        raise DomainError(ErrorCode.IDEMPOTENCY_KEY_INVALID, "Idempotency-Key must be a UUID v4")
    return key


def request_payload(command: Command) -> dict[str, object]:
    """What identifies the request behind a key: its type, its order and its payload."""
    ignored = set(ENVELOPE) | ({"order_id"} if isinstance(command, RequestQuote) else set())
    return {"type": type(command).__name__, **command.model_dump(mode="json", exclude=ignored)}


def request_fingerprint(command: Command) -> str:
    return fingerprint(request_payload(command))


def keeps(error: DomainError | None) -> bool:
    """Whether an answer is kept under its key: every answer but a transient failure."""
    return error is None or error.code not in TRANSIENT_CODES


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
