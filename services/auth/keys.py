"""API keys: random keys bound to one customer and its scopes, and the rules of a new one.

A key reads `otc_<prefix>_<secret>`. The prefix (12 random letters and digits, public) finds the
row with one indexed lookup; the secret is 32 random bytes in base64url. Only the SHA-256 of the
whole key is stored, and it is compared with `hmac.compare_digest`. A fast unsalted hash is
enough because a key holds 256 random bits: there is no guessable space for a slow password hash
(bcrypt, argon2) to protect, which would only slow down every request. The plaintext is returned
once, when it is issued; it is never stored, logged or part of a record.

Keys of the platform customer are operator keys: they, and only they, carry
`otc-exchanges:operate`, and each names the one operator who holds it. The store of keys in
PostgreSQL is services/auth/key_store.py.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from base64 import urlsafe_b64encode
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import UUID

from services.auth.principal import KNOWN_SCOPES, OperatorIdentity, Principal, Scope
from services.resources.port import PLATFORM_CUSTOMER_ID

KEY_TAG = "otc"
PREFIX_LENGTH = 12
SECRET_BYTES = 32
MAX_NAME_LENGTH = 200
LAST_USED_RESOLUTION_SECONDS = 60

_PREFIX_ALPHABET = string.ascii_letters + string.digits
_SECRET_LENGTH = len(urlsafe_b64encode(bytes(SECRET_BYTES)).rstrip(b"="))
_KEY_LENGTH = len(KEY_TAG) + 1 + PREFIX_LENGTH + 1 + _SECRET_LENGTH
_KEY_SHAPE = re.compile(
    rf"{KEY_TAG}_(?P<prefix>[A-Za-z0-9]{{{PREFIX_LENGTH}}})_[A-Za-z0-9_-]{{{_SECRET_LENGTH}}}"
)


class ApiKeyError(Exception):
    """A request the key store refused. The message is safe to show: it never holds a key."""


class InvalidApiKeyError(ApiKeyError):
    pass


class ApiKeyNotFoundError(ApiKeyError):
    pass


@dataclass(frozen=True)
class ApiKeyRecord:
    """A key as operators see it. It holds neither the secret nor its hash."""

    id: UUID
    customer_id: UUID
    name: str
    scopes: frozenset[str]
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    operator: OperatorIdentity | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class IssuedKey:
    """A new key: the plaintext for its owner, the prefix and hash for the store."""

    plaintext: str = field(repr=False)
    prefix: str
    secret_hash: bytes = field(repr=False)


class ApiKeyVerifier(Protocol):
    """What the gateway needs of a key store; a fake for tests needs only this."""

    async def verify(self, plaintext: str) -> Principal | None: ...


def issue_key() -> IssuedKey:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    secret = secrets.token_urlsafe(SECRET_BYTES)
    plaintext = f"{KEY_TAG}_{prefix}_{secret}"
    return IssuedKey(plaintext=plaintext, prefix=prefix, secret_hash=key_hash(plaintext))


def key_prefix(plaintext: str) -> str | None:
    """The lookup prefix of a well-formed key; None for anything else."""
    if len(plaintext) != _KEY_LENGTH:
        return None
    match = _KEY_SHAPE.fullmatch(plaintext)
    return None if match is None else match.group("prefix")


def key_hash(plaintext: str) -> bytes:
    return hashlib.sha256(plaintext.encode()).digest()


def check_key_scopes(customer_id: UUID, scopes: Collection[str]) -> frozenset[str]:
    """The scopes of a new key: at least one, all known, and `otc-exchanges:operate` exactly
    when the key belongs to the platform customer."""
    if isinstance(scopes, str):
        raise InvalidApiKeyError("scopes must be a collection of scope names, not one string")
    granted = frozenset(scopes)
    if not granted:
        raise InvalidApiKeyError("a key needs at least one scope")
    unknown = granted - KNOWN_SCOPES
    if unknown:
        known = ", ".join(sorted(KNOWN_SCOPES))
        raise InvalidApiKeyError(f"unknown scope {', '.join(sorted(unknown))} (known: {known})")
    operator = Scope.OPERATE in granted
    if operator and customer_id != PLATFORM_CUSTOMER_ID:
        raise InvalidApiKeyError(f"only the platform customer's keys may carry {Scope.OPERATE}")
    if not operator and customer_id == PLATFORM_CUSTOMER_ID:
        raise InvalidApiKeyError(
            f"the platform customer's keys are operator keys: add {Scope.OPERATE}"
        )
    return granted


def check_key_name(name: str) -> str:
    text = name.strip()
    if not text:
        raise InvalidApiKeyError("name must not be empty")
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidApiKeyError(f"name is longer than {MAX_NAME_LENGTH} characters")
    return text
