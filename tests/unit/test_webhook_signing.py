"""Signing per Standard Webhooks, checked with the specification's own library."""

from __future__ import annotations

import base64
import time
import uuid

import pytest
from cryptography.fernet import Fernet
from standardwebhooks import Webhook, WebhookVerificationError

from services.webhooks.signing import (
    SecretBox,
    new_box_key,
    new_secret,
    secret_key,
    webhook_headers,
    webhook_id,
)

BODY = b'{"type":"order.paid_out","timestamp":"2026-03-01T12:00:00Z","data":{"id":"x"}}'


def test_a_new_secret_is_whsec_and_32_random_bytes() -> None:
    secret = new_secret()

    assert secret.startswith("whsec_")
    assert len(secret_key(secret)) == 32
    assert secret != new_secret()


def test_a_delivery_verifies_with_the_standard_webhooks_library() -> None:
    secret = new_secret()
    headers = webhook_headers("msg_1", int(time.time()), BODY, [secret])

    assert Webhook(secret).verify(BODY, headers)["type"] == "order.paid_out"


def test_a_changed_body_or_another_secret_does_not_verify() -> None:
    secret = new_secret()
    headers = webhook_headers("msg_1", int(time.time()), BODY, [secret])

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"paid_out", b"rejected"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_during_a_rotation_both_secrets_verify_the_same_delivery() -> None:
    old, new = new_secret(), new_secret()
    headers = webhook_headers("msg_1", int(time.time()), BODY, [new, old])

    assert headers["webhook-signature"].count("v1,") == 2
    assert Webhook(old).verify(BODY, headers)
    assert Webhook(new).verify(BODY, headers)


def test_the_signature_covers_the_id_and_the_timestamp() -> None:
    secret = new_secret()
    now = int(time.time())
    headers = webhook_headers("msg_1", now, BODY, [secret])

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "msg_2"})
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-timestamp": str(now - 1)})


def test_the_webhook_id_is_stable_per_event_and_endpoint() -> None:
    endpoint, other_endpoint, event = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    assert webhook_id(endpoint, event) == webhook_id(endpoint, event)
    assert webhook_id(endpoint, event) != webhook_id(other_endpoint, event)
    assert webhook_id(endpoint, event).startswith("msg_")


def test_a_sealed_secret_opens_with_its_key_and_hides_the_secret() -> None:
    box = SecretBox(new_box_key())
    secret = new_secret()

    sealed = box.seal(secret)

    assert secret.encode() not in sealed
    assert base64.b64decode(secret.removeprefix("whsec_")) not in sealed
    assert box.open(sealed) == secret
    with pytest.raises(ValueError, match="does not open"):
        SecretBox(new_box_key()).open(sealed)


def test_secrets_sealed_under_an_older_key_still_open_after_the_key_is_rotated() -> None:
    old_key, new_key = new_box_key(), Fernet.generate_key().decode()
    sealed = SecretBox(old_key).seal("whsec_c2VjcmV0")

    assert SecretBox(f"{new_key},{old_key}").open(sealed) == "whsec_c2VjcmV0"
