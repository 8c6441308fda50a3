"""`otc webhooks`: endpoints, deliveries and replays for operators, as JSON on stdout.

Operators see every customer's endpoints (never a secret). `replay` queues a window of an
endpoint's events again, as the customer's POST /webhook-endpoints/{id}/replay does: same
webhook-ids and bodies, a fresh retry schedule, each order in version order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar
from uuid import UUID

import typer

from services.cli.on_store import run_on_store
from services.webhooks.errors import EndpointNotFoundError, WebhookError
from services.webhooks.model import Delivery, Endpoint
from services.webhooks.store import PostgresWebhookStore

webhooks_app = typer.Typer(
    no_args_is_help=True, help="Webhook endpoints, their deliveries, and replays."
)

T = TypeVar("T")
Json = dict[str, object]

EndpointArgument = Annotated[UUID, typer.Argument(metavar="ENDPOINT_ID")]


@webhooks_app.command("list")
def list_endpoints(
    *,
    customer: Annotated[UUID | None, typer.Option("--customer", help="one customer's only")] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
) -> None:
    """Endpoints, newest first: URL, event types, enabled or why not."""

    async def work(store: PostgresWebhookStore) -> tuple[list[Endpoint], int]:
        return await store.endpoints(customer, page=page, limit=limit)

    _run(work, lambda found: {"data": [_endpoint(e) for e in found[0]], "total": found[1]})


@webhooks_app.command("deliveries")
def list_deliveries(
    endpoint_id: EndpointArgument,
    *,
    page: Annotated[int, typer.Option(min=1)] = 1,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """An endpoint's deliveries, newest first: status, attempts, last answer, next attempt."""

    async def work(store: PostgresWebhookStore) -> tuple[list[Delivery], int]:
        await _endpoint_of(store, endpoint_id)
        return await store.deliveries(endpoint_id, page=page, limit=limit)

    _run(work, lambda found: {"data": [_delivery(d) for d in found[0]], "total": found[1]})


@webhooks_app.command("replay")
def replay(
    endpoint_id: EndpointArgument,
    *,
    since: Annotated[datetime, typer.Option("--since", help="from (inclusive), UTC if naive")],
    until: Annotated[
        datetime | None, typer.Option("--until", help="to (exclusive); default: now")
    ] = None,
) -> None:
    """Queue an endpoint's events of a window again (after a receiver was down too long)."""

    async def work(store: PostgresWebhookStore) -> int:
        endpoint = await _endpoint_of(store, endpoint_id)
        now = datetime.now(UTC)
        return await store.replay(
            endpoint.customer_id, endpoint.id, _aware(since), _aware(until) if until else now, now
        )

    _run(work, lambda queued: {"endpointId": str(endpoint_id), "queued": queued})


async def _endpoint_of(store: PostgresWebhookStore, endpoint_id: UUID) -> Endpoint:
    found = await store.endpoint(None, endpoint_id)
    if found is None:
        raise EndpointNotFoundError(f"no webhook endpoint {endpoint_id}")
    return found


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _run(work: Callable[[PostgresWebhookStore], Awaitable[T]], view: Callable[[T], object]) -> None:
    run_on_store(PostgresWebhookStore, (WebhookError,), work, view)


def _endpoint(endpoint: Endpoint) -> Json:
    return {
        "id": str(endpoint.id),
        "customerId": str(endpoint.customer_id),
        "url": endpoint.url,
        "description": endpoint.description,
        "eventTypes": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "disabledReason": endpoint.disabled_reason,
        "createdAt": endpoint.created_at.isoformat(),
    }


def _delivery(delivery: Delivery) -> Json:
    def moment(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "webhookId": delivery.webhook_id,
        "eventId": str(delivery.event_id),
        "eventType": delivery.event_type,
        "orderId": None if delivery.order_id is None else str(delivery.order_id),
        "orderVersion": delivery.version,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "lastStatusCode": delivery.last_status_code,
        "lastError": delivery.last_error,
        "nextAttemptAt": moment(delivery.next_attempt_at),
        "deliveredAt": moment(delivery.delivered_at),
    }
