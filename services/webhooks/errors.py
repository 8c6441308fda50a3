"""Refusals of the webhook store and its use cases; each message is safe to show."""

from __future__ import annotations


class WebhookError(Exception):
    pass


class EndpointNotFoundError(WebhookError):
    pass


class EndpointLimitError(WebhookError):
    pass


class EndpointDisabledError(WebhookError):
    pass


class IdempotencyConflictError(WebhookError):
    """The Idempotency-Key made an endpoint from another request."""


class WebhooksUnavailableError(WebhookError):
    """Webhooks are not configured here (no OTC_WEBHOOK_SECRETS_KEY)."""
