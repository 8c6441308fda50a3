"""Who may call the REST API: API keys (stored as hashes) and Bearer JWTs, both resolved to a
`Principal` with a customer id and scopes."""

from __future__ import annotations

from services.auth.jwt import JwtVerifier, bearer_token
from services.auth.key_store import ApiKeyStore
from services.auth.keys import (
    ApiKeyError,
    ApiKeyNotFoundError,
    ApiKeyRecord,
    ApiKeyVerifier,
    InvalidApiKeyError,
)
from services.auth.principal import KNOWN_SCOPES, Principal, Scope

__all__ = [
    "KNOWN_SCOPES",
    "ApiKeyError",
    "ApiKeyNotFoundError",
    "ApiKeyRecord",
    "ApiKeyStore",
    "ApiKeyVerifier",
    "InvalidApiKeyError",
    "JwtVerifier",
    "Principal",
    "Scope",
    "bearer_token",
]
