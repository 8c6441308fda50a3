"""The console's sign-in: an operator key exchanged for a session.

The browser holds only a random session token, in an HttpOnly, SameSite=Strict cookie that
expires with the session; the key stays in the gateway's memory and is verified again on each
request (through the key cache, so a revoked key stops working within its few seconds). Each
session has its own CSRF token, which every form carries and every POST must send back.

The sign-in form itself has a CSRF token too (login CSRF): a random value in a short-lived
cookie of its own and in the form, which the POST must send back both ways.

Sessions live in the gateway process: a restart signs everyone out, and several gateways
behind one address need sticky sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

SESSION_COOKIE = "otc_console"
SIGN_IN_COOKIE = "otc_console_sign_in"
SIGN_IN_SECONDS = 600
"""How long a sign-in form stays usable."""
MAX_SESSIONS = 10_000
"""Sessions kept at most; the oldest go first (each holds a key in memory)."""


@dataclass
class Session:
    key: str
    """The operator's API key: server-side only, never in a cookie, a page or a log line."""
    csrf: str
    operator_name: str
    expires_at: float


class Sessions:
    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._by_digest: dict[str, Session] = {}

    def open(self, key: str, operator_name: str) -> tuple[str, Session]:
        """A new session for `key`: its token (for the cookie) and the session."""
        self._prune()
        token = secrets.token_urlsafe(32)
        session = Session(
            key=key,
            csrf=secrets.token_urlsafe(32),
            operator_name=operator_name,
            expires_at=self._clock() + self.ttl_seconds,
        )
        self._by_digest[digest(token)] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        found = self._by_digest.get(digest(token))
        if found is None:
            return None
        if found.expires_at <= self._clock():
            self.close(token)
            return None
        return found

    def close(self, token: str | None) -> None:
        if token:
            self._by_digest.pop(digest(token), None)

    def _prune(self) -> None:
        now = self._clock()
        for name, session in list(self._by_digest.items()):
            if session.expires_at <= now:
                del self._by_digest[name]
        while len(self._by_digest) >= MAX_SESSIONS:
            oldest = min(self._by_digest, key=lambda name: self._by_digest[name].expires_at)
            del self._by_digest[oldest]


def digest(token: str) -> str:
    """Sessions are found by their token's hash, so the table holds no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


def same(sent: str | None, expected: str | None) -> bool:
    """A CSRF token check in constant time; nothing sent (or expected) never matches."""
    if not sent or not expected:
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())
