"""Standard Webhooks signing: endpoint secrets, the three `webhook-*` headers, and the sealing
of secrets at rest.

A secret reads `whsec_<base64 of 32 random bytes>`; the HMAC key is those bytes. A message is
signed as `v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">`. While a
rotated-out secret is still in its grace period, the header carries one signature per secret,
separated by spaces, so a receiver holding either verifies.

The dispatcher must sign, so a secret cannot be stored as a hash: it is sealed with Fernet
(AES-128-CBC + HMAC-SHA256) under `OTC_WEBHOOK_SECRETS_KEY`. That setting may list several keys,
comma-separated: the first seals, all open (to rotate the key itself).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from uuid import NAMESPACE_URL, UUID, uuid5

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of every secret, not a secret
SECRET_BYTES = 32
SIGNATURE_VERSION = "v1"
TOLERANCE_SECONDS = 300
WEBHOOK_ID_NAMESPACE = uuid5(NAMESPACE_URL, "urn:otc:webhook-messages")


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def webhook_id(endpoint_id: UUID, event_id: UUID) -> str:
    """Stable per event and endpoint: every attempt, and every replay, carries the same one."""
    return f"msg_{uuid5(WEBHOOK_ID_NAMESPACE, f'{endpoint_id}:{event_id}').hex}"


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def webhook_headers(
    message_id: str, timestamp: int, body: bytes, signing_secrets: Sequence[str]
) -> dict[str, str]:
    """The headers of one attempt: signed by every secret given (the current one first)."""
    if not signing_secrets:
        raise ValueError("a webhook is signed by at least one secret")
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret, message_id, timestamp, body) for secret in signing_secrets
        ),
        "content-type": "application/json",
    }


class SecretBox:
    """Seals endpoint secrets for storage and opens them to sign."""

    def __init__(self, keys: str) -> None:
        parts = [key.strip() for key in keys.split(",") if key.strip()]
        if not parts:
            raise ValueError("OTC_WEBHOOK_SECRETS_KEY names no key")
        self._fernet = MultiFernet([Fernet(key) for key in parts])

    def seal(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def open(self, sealed: bytes) -> str:
        try:
            return self._fernet.decrypt(sealed).decode()
        except InvalidToken:
            raise ValueError(
                "a webhook secret does not open with OTC_WEBHOOK_SECRETS_KEY"
            ) from None


def new_box_key() -> str:
    """A key for OTC_WEBHOOK_SECRETS_KEY."""
    return Fernet.generate_key().decode()


def verify(signing_secrets: Sequence[str], headers: dict[str, str], body: bytes, now: int) -> bool:
    """Whether a webhook is signed by one of these secrets, within 5 minutes of `now` (the
    receiver's side of the specification, for the local receiver)."""
    lower = {name.lower(): value for name, value in headers.items()}
    message_id = lower.get("webhook-id", "")
    stamp = lower.get("webhook-timestamp", "")
    if not message_id or not stamp.isdigit() or abs(now - int(stamp)) > TOLERANCE_SECONDS:
        return False
    given = lower.get("webhook-signature", "").split()
    expected = {signature(secret, message_id, int(stamp), body) for secret in signing_secrets}
    return any(hmac.compare_digest(sig, want) for sig in given for want in expected)
