"""An example of every request and response body of the REST API, by schema name, for the
OpenAPI document (services/gateway/contract.py). tests/unit/test_openapi_contract.py checks each
against its schema. The ids and the order are those of the Kafka contracts' examples."""

from __future__ import annotations

from typing import Any

from services.contract_examples import (
    EXAMPLE_ACCOUNT_ID,
    EXAMPLE_COMMAND_ID,
    EXAMPLE_CUSTOMER_ID,
    EXAMPLE_ORDER_ID,
    EXAMPLE_ORDER_VIEW,
    EXAMPLE_WALLET_ID,
)

ENDPOINT_ID = "0d6f3c52-8a47-4f0e-9b1d-7c2e5a9f4b13"
EVENT_ID = "5b0e8f3a-1c2d-5e4f-8a9b-0c1d2e3f4a5b"
AT = "2025-03-03T09:00:01Z"


def page(item: dict[str, Any]) -> dict[str, Any]:
    return {"data": [item], "page": 1, "limit": 20, "total": 1}


ACCOUNT = {
    "id": EXAMPLE_ACCOUNT_ID,
    "name": "Operating account",
    "currency": "EUR",
    "status": "active",
    "ibanLast4": "4821",
}
WALLET = {
    "id": EXAMPLE_WALLET_ID,
    "label": "Custody wallet",
    "network": "ethereum",
    "usdcAddress": "0x52908400098527886E0F7030069857D2E4169EE7",
}
ORDER = EXAMPLE_ORDER_VIEW
OPS_ORDER = {
    **ORDER,
    "status": "pending_approval",
    "approvals": [],
    "dualControl": False,
    "awaitingSecondApproval": False,
}
ENDPOINT = {
    "id": ENDPOINT_ID,
    "url": "https://hooks.example.com/otc",
    "description": "ledger sync",
    "eventTypes": ["order.paid_out"],
    "enabled": True,
    "disabledReason": None,
    "disabledAt": None,
    "createdAt": AT,
    "updatedAt": AT,
}
DELIVERY = {
    "webhookId": f"msg_{EVENT_ID}",
    "eventId": EVENT_ID,
    "eventType": "order.paid_out",
    "orderId": EXAMPLE_ORDER_ID,
    "orderVersion": 6,
    "status": "succeeded",
    "attempts": 1,
    "lastStatusCode": 204,
    "lastError": None,
    "lastAttemptAt": AT,
    "nextAttemptAt": None,
    "createdAt": AT,
    "deliveredAt": AT,
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "Account": ACCOUNT,
    "AccountList": {"data": [ACCOUNT]},
    "Wallet": WALLET,
    "WalletList": {"data": [WALLET]},
    "WalletBalance": {
        "walletId": EXAMPLE_WALLET_ID,
        "network": "ethereum",
        "usdcBalance": "12.345678",
    },
    "BuyQuoteRequest": {
        "side": "buy",
        "sourceAccountId": EXAMPLE_ACCOUNT_ID,
        "destinationWalletId": EXAMPLE_WALLET_ID,
        "sourceAmount": "1000.00",
    },
    "SellQuoteRequest": {
        "side": "sell",
        "sourceWalletId": EXAMPLE_WALLET_ID,
        "destinationAccountId": EXAMPLE_ACCOUNT_ID,
        "sourceAmount": "250.000000",
    },
    "ConfirmRequest": {"quoteId": EXAMPLE_ORDER_ID, "side": "buy", "maxSlippageBps": 50},
    "OrderView": ORDER,
    "OrderPage": page(ORDER),
    "OpsOrder": OPS_ORDER,
    "OpsOrderPage": page(OPS_ORDER),
    "ApproveRequest": {"rate": "1.0795"},
    "RejectRequest": {"reason": "source of funds not evidenced"},
    "History": {
        "orderId": EXAMPLE_ORDER_ID,
        "events": [
            {
                "version": 1,
                "type": "Quoted",
                "occurredAt": AT,
                "actor": {"kind": "customer", "id": EXAMPLE_CUSTOMER_ID, "name": None},
                "commandId": EXAMPLE_COMMAND_ID,
                "data": {"sourceAmount": "1000.00", "rate": "1.0800"},
            }
        ],
    },
    "CreateEndpoint": {
        "url": "https://hooks.example.com/otc",
        "eventTypes": ["order.paid_out"],
        "description": "ledger sync",
    },
    "UpdateEndpoint": {"enabled": False},
    "EndpointOut": ENDPOINT,
    "CreatedEndpoint": {**ENDPOINT, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
    "EndpointPage": page(ENDPOINT),
    "RotatedSecret": {
        "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "previousSecretsExpireAt": "2025-03-04T09:00:01Z",
    },
    "DeliveryOut": DELIVERY,
    "DeliveryPage": page(DELIVERY),
    "ReplayRequest": {"since": "2025-03-03T00:00:00Z", "until": "2025-03-04T00:00:00Z"},
    "ReplayQueued": {"queued": 12},
    "Health": {"status": "ok", "checks": {"database": "ok"}, "lags": {"relay": 0}},
}
