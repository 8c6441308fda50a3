"""The response headers clients act on: `Location` of a 201, `Retry-After` of a 502, 503 or 504
(added by `services.http_errors.ErrorGuard` to every such answer), and `Idempotent-Replayed` of
a stored answer replayed (services/gateway/commands.py). Their OpenAPI documentation is here too,
for services/gateway/contract.py."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from services.gateway.commands import IDEMPOTENT_REPLAYED
from services.http_errors import RETRY_AFTER

LOCATION = "Location"
RETRYABLE = frozenset({502, 503, 504})
"""The statuses whose answers say when to try again."""

DOCUMENTED: dict[str, dict[str, Any]] = {
    LOCATION: {
        "description": "the path of the resource created",
        "schema": {"type": "string", "format": "uri-reference"},
    },
    RETRY_AFTER: {
        "description": "seconds to wait before trying again (with the same Idempotency-Key)",
        "schema": {"type": "integer", "minimum": 0},
    },
    IDEMPOTENT_REPLAYED: {
        "description": "true: the stored answer to an earlier request with this Idempotency-Key,"
        " replayed; nothing was done again",
        "schema": {"type": "string", "enum": ["true"]},
    },
}


def located(response: Response, path: str) -> Response:
    """A 201 with the `Location` of what it created (another answer as it is)."""
    if response.status_code == 201:  # noqa: PLR2004 - Created
        response.headers[LOCATION] = path
    return response
