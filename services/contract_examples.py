"""Examples of the Kafka messages of services/contracts.py, as the system writes them: one buy
order's quote request, its reply and its first event, and a refusal. They are part of the
AsyncAPI document; tests/unit/test_contracts.py checks that each parses as its model."""

from __future__ import annotations

from typing import Any

EXAMPLE_CUSTOMER_ID = "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
EXAMPLE_ORDER_ID = "eac5142c-a91e-40fe-9f7b-aff7c7a813c2"
EXAMPLE_COMMAND_ID = "87604037-a4a7-459d-9c1f-bcce65a9759e"
EXAMPLE_ACCOUNT_ID = "b3982936-fc57-47d5-9ead-515aa3887e56"
EXAMPLE_WALLET_ID = "b874e7a7-958f-4815-b9e2-3b5d4d6aeff1"

EXAMPLE_COMMAND: dict[str, Any] = {
    "schemaVersion": 1,
    "commandId": EXAMPLE_COMMAND_ID,
    "type": "RequestQuote",
    "orderId": EXAMPLE_ORDER_ID,
    "customerId": EXAMPLE_CUSTOMER_ID,
    "actor": {"kind": "customer", "id": EXAMPLE_CUSTOMER_ID, "name": None},
    "idempotencyKey": None,
    "issuedAt": "2025-03-03T09:00:00.512000Z",
    "payload": {
        "side": "buy",
        "sourceId": EXAMPLE_ACCOUNT_ID,
        "destinationId": EXAMPLE_WALLET_ID,
        "sourceAmount": "1000.00",
    },
}

EXAMPLE_ORDER_VIEW: dict[str, Any] = {
    "id": EXAMPLE_ORDER_ID,
    "quoteId": EXAMPLE_ORDER_ID,
    "side": "buy",
    "status": "quoted",
    "sourceId": EXAMPLE_ACCOUNT_ID,
    "sourceCurrency": "EUR",
    "sourceAmount": "1000.00",
    "destinationId": EXAMPLE_WALLET_ID,
    "destinationCurrency": "USDC",
    "destinationAmount": "1080.000000",
    "rate": "1.0800",
    "fee": "0.00",
    "expiresAt": "2025-03-03T09:00:31Z",
    "createdAt": "2025-03-03T09:00:01Z",
    "updatedAt": "2025-03-03T09:00:01Z",
}

EXAMPLE_REPLY: dict[str, Any] = {
    "schemaVersion": 1,
    "commandId": EXAMPLE_COMMAND_ID,
    "ok": True,
    "order": EXAMPLE_ORDER_VIEW,
    "error": None,
    "position": 1,
    "replayed": False,
}

EXAMPLE_ERROR: dict[str, Any] = {
    "status": 409,
    "code": "NOT_CANCELLABLE",
    "message": "the order can no longer be cancelled",
    "field": None,
}

EXAMPLE_REFUSAL: dict[str, Any] = {
    "schemaVersion": 1,
    "commandId": "0b7e2c4d-3f5a-4b6c-9d8e-1f2a3b4c5d6e",
    "ok": False,
    "order": None,
    "error": EXAMPLE_ERROR,
    "position": None,
    "replayed": False,
}

EXAMPLE_EVENT: dict[str, Any] = {
    "schemaVersion": 1,
    "eventId": "a462d8a3-77e8-587b-a13e-41beb82c2ff3",
    "type": "order.quoted",
    "orderId": EXAMPLE_ORDER_ID,
    "customerId": EXAMPLE_CUSTOMER_ID,
    "side": "buy",
    "version": 1,
    "position": 1,
    "occurredAt": "2025-03-03T09:00:01Z",
    "data": {
        "actorKind": "customer",
        "actorId": EXAMPLE_CUSTOMER_ID,
        "actorName": None,
        "commandId": EXAMPLE_COMMAND_ID,
        "sourceId": EXAMPLE_ACCOUNT_ID,
        "sourceAmount": "1000.00",
        "destinationId": EXAMPLE_WALLET_ID,
        "rate": "1.0800",
        "fee": "0.00",
        "destinationAmount": "1080.000000",
        "expiresAt": "2025-03-03T09:00:31Z",
        "providerQuoteId": "provider-q-7dbff844",
    },
}
