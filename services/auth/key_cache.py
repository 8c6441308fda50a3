"""Verified API keys, remembered for a few seconds: most requests then cost no database read.

Only a key the store accepted is remembered, for `ttl_seconds` from that verification; a
revoked key therefore stops working within `ttl_seconds` (`OTC_API_KEY_CACHE_SECONDS`, 5 by
default; 0 turns the cache off). A refused key is not remembered, so keys that do not exist,
however many, take no memory; the accepted ones are bounded too (`max_entries`, the least
recently used going first).

An entry is found by a keyed BLAKE2b digest of the plaintext under a random key of this process:
the plaintext is never kept, and neither is the SHA-256 the store holds. `last_used_at` is
written by the store when it verifies, so at most once per `ttl_seconds` per key and process
from here (the store itself writes it at most once a minute).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from services.auth.keys import ApiKeyVerifier
from services.auth.principal import Principal

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    expires_at: float


class CachedApiKeys:
    """An `ApiKeyVerifier` in front of another (the store), for one event loop. Concurrent first
    uses of one key each ask the store; the last answer is kept."""

    def __init__(
        self,
        store: ApiKeyVerifier,
        *,
        ttl_seconds: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._digest_key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def verify(self, plaintext: str) -> Principal | None:
        if self._ttl <= 0:
            return await self._store.verify(plaintext)
        digest = self._digest(plaintext)
        entry = self._entries.get(digest)
        if entry is not None:
            if self._clock() < entry.expires_at:
                self._entries.move_to_end(digest)
                return entry.principal
            del self._entries[digest]
        principal = await self._store.verify(plaintext)
        if principal is not None:
            self._remember(digest, principal)
        return principal

    def _remember(self, digest: bytes, principal: Principal) -> None:
        self._entries[digest] = _Entry(principal, self._clock() + self._ttl)
        self._entries.move_to_end(digest)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def _digest(self, plaintext: str) -> bytes:
        return hashlib.blake2b(plaintext.encode(), key=self._digest_key, digest_size=32).digest()
