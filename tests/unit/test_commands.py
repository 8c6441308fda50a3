from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

import pytest
from pydantic import TypeAdapter, ValidationError

from domain.commands import (
    COMMAND_TYPES,
    ActorRef,
    AnyCommand,
    ApproveOrder,
    CancelOrder,
    Command,
    ConfirmQuote,
    RecordPayout,
    RecordPayoutFailure,
    RequestQuote,
)
from domain.idempotency import request_payload
from domain.order import Actor, ActorKind, Side

ENVELOPE: dict[str, Any] = {
    "commandId": "0b6c6f4e-5d7a-4b8e-9a51-2f0c8d6e4b21",
    "orderId": "0b6c6f4e-5d7a-4b8e-9a51-2f0c8d6e4b22",
    "customerId": "0b6c6f4e-5d7a-4b8e-9a51-2f0c8d6e4b23",
    "actor": {"kind": "customer", "id": "0b6c6f4e-5d7a-4b8e-9a51-2f0c8d6e4b23"},
    "issuedAt": "2025-03-03T09:00:00Z",
}
SELL_QUOTE: dict[str, Any] = {
    **ENVELOPE,
    "type": "RequestQuote",
    "side": "sell",
    "sourceId": "0b6c6f4e-5d7a-4b8e-9a51-2f0c8d6e4b24",
    "destinationId": "0b6c6f4e-5d7a-4b8e-9a51-2f0c8d6e4b25",
    "sourceAmount": "250.000000",
}
# A valid camelCase body of every command type.
BODIES: dict[str, dict[str, Any]] = {
    "RequestQuote": SELL_QUOTE,
    "Requote": {**ENVELOPE, "type": "Requote"},
    "ConfirmQuote": {**ENVELOPE, "type": "ConfirmQuote", "side": "sell", "maxSlippageBps": 50},
    "CancelOrder": {**ENVELOPE, "type": "CancelOrder"},
    "ExpireQuote": {**ENVELOPE, "type": "ExpireQuote"},
    "ApproveOrder": {**ENVELOPE, "type": "ApproveOrder", "rate": "0.9210"},
    "RejectOrder": {**ENVELOPE, "type": "RejectOrder", "reason": "sanctions screening"},
    "RetryPayout": {**ENVELOPE, "type": "RetryPayout"},
    "RetryRefund": {**ENVELOPE, "type": "RetryRefund"},
    "RecordSourceDebit": {**ENVELOPE, "type": "RecordSourceDebit", "reference": "bank-1"},
    "RecordSourceDebitFailure": {
        **ENVELOPE,
        "type": "RecordSourceDebitFailure",
        "reason": "insufficient funds",
    },
    "RecordRefund": {**ENVELOPE, "type": "RecordRefund", "attempt": 1, "reference": "bank-2"},
    "RecordRefundFailure": {
        **ENVELOPE,
        "type": "RecordRefundFailure",
        "attempt": 1,
        "reason": "ACCOUNT_CLOSED: the account is closed",
    },
    "RecordPayout": {**ENVELOPE, "type": "RecordPayout", "attempt": 1, "reference": "0xabc"},
    "RecordPayoutFailure": {
        **ENVELOPE,
        "type": "RecordPayoutFailure",
        "attempt": 2,
        "reason": "address rejected",
    },
    "RecordMovementUnresolved": {
        **ENVELOPE,
        "type": "RecordMovementUnresolved",
        "leg": "payout",
        "attempt": 1,
        "reason": "no answer for 10 minutes",
    },
}


def parse(body: dict[str, Any]) -> Command:
    return COMMAND_TYPES[body["type"]].model_validate(body)


# ---------------------------------------------------------------- parsing


def test_request_quote_parses_from_camel_case_json() -> None:
    command = RequestQuote.model_validate_json(json.dumps(SELL_QUOTE))

    assert command.side is Side.SELL
    assert command.source_id == UUID("0b6c6f4e-5d7a-4b8e-9a51-2f0c8d6e4b24")
    assert command.source_amount == Decimal("250.000000")
    assert str(command.source_amount) == "250.000000"
    assert command.actor.to_actor() == Actor(ActorKind.CUSTOMER, ENVELOPE["customerId"])
    assert command.idempotency_key is None


def test_request_quote_without_a_side_is_a_buy() -> None:
    body = {name: value for name, value in SELL_QUOTE.items() if name != "side"}

    assert RequestQuote.model_validate(body).side is Side.BUY


def test_confirm_without_a_side_is_a_buy_without_a_slippage_limit() -> None:
    command = ConfirmQuote.model_validate({**ENVELOPE, "type": "ConfirmQuote"})

    assert (command.side, command.max_slippage_bps) == (Side.BUY, None)


@pytest.mark.parametrize("type_name", sorted(BODIES))
def test_every_command_round_trips_through_its_camel_case_json(type_name: str) -> None:
    command = parse(BODIES[type_name])

    wire = command.model_dump_json(by_alias=True)

    assert type(command).__name__ == type_name
    assert COMMAND_TYPES[type_name].model_validate_json(wire) == command
    assert "command_id" not in wire
    assert "commandId" in wire


def test_amounts_are_written_as_decimal_strings() -> None:
    body = json.loads(parse(BODIES["ApproveOrder"]).model_dump_json(by_alias=True))

    assert body["rate"] == "0.9210"
    assert json.loads(parse(SELL_QUOTE).model_dump_json(by_alias=True))["sourceAmount"] == (
        "250.000000"
    )


def test_command_types_name_each_class_by_its_type() -> None:
    assert set(COMMAND_TYPES) == set(BODIES)
    for name, command_class in COMMAND_TYPES.items():
        assert command_class.model_fields["type"].default == name


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**SELL_QUOTE, "sourceAmount": 250.0}, "sourceAmount"),
        ({**BODIES["ApproveOrder"], "rate": 0.921}, "rate"),
        ({**BODIES["ConfirmQuote"], "maxSlippageBps": 50.0}, "maxSlippageBps"),
        ({**BODIES["RecordPayout"], "attempt": 1.0}, "attempt"),
    ],
)
def test_floats_are_refused_where_numbers_travel(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match="never as floats") as refusal:
        parse(body)

    assert refusal.value.errors()[0]["loc"] == (field,)


def test_a_float_amount_in_json_text_is_refused() -> None:
    with pytest.raises(ValidationError, match="never as floats"):
        RequestQuote.model_validate_json(json.dumps({**SELL_QUOTE, "sourceAmount": 250.5}))


@pytest.mark.parametrize("type_name", sorted(BODIES))
def test_unknown_fields_are_refused(type_name: str) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        parse({**BODIES[type_name], "sneakyField": "x"})


def test_unknown_actor_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        ActorRef.model_validate({"kind": "customer", "id": "c", "role": "admin"})


@pytest.mark.parametrize(
    "body",
    [
        {**BODIES["ConfirmQuote"], "maxSlippageBps": -1},
        {**BODIES["ConfirmQuote"], "maxSlippageBps": 10_001},
        {**BODIES["ApproveOrder"], "rate": "0"},
        {**BODIES["ApproveOrder"], "rate": "-0.92"},
        {**BODIES["ApproveOrder"], "rate": "about one"},
        {**BODIES["RecordPayout"], "attempt": 0},
        {**BODIES["RecordPayout"], "reference": ""},
        {**BODIES["RecordRefund"], "reference": "r" * 201},
        {**ENVELOPE, "type": "CancelOrder", "actor": {"kind": "robot", "id": "r2"}},
        {**ENVELOPE, "type": "CancelOrder", "actor": {"kind": "customer", "id": ""}},
        {**ENVELOPE, "type": "CancelOrder", "commandId": "not-a-uuid"},
        {**SELL_QUOTE, "side": "hold"},
    ],
)
def test_out_of_range_payloads_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse(body)


def test_a_body_of_one_type_is_refused_by_another() -> None:
    with pytest.raises(ValidationError, match="RequestQuote"):
        RequestQuote.model_validate({**SELL_QUOTE, "type": "Requote"})


def test_commands_are_immutable() -> None:
    command = parse(BODIES["CancelOrder"])

    with pytest.raises(ValidationError):
        command.order_id = UUID(int=1)  # type: ignore[misc]


# ---------------------------------------------------------------- the discriminated union


def any_command_adapter() -> TypeAdapter[Command]:
    # A union is no `type[Command]` to mypy; pydantic takes it all the same.
    return TypeAdapter(cast("type[Command]", AnyCommand))


@pytest.mark.parametrize("type_name", sorted(BODIES))
def test_any_command_parses_each_body_to_the_class_its_type_names(type_name: str) -> None:
    adapter = any_command_adapter()

    command = adapter.validate_python(BODIES[type_name])

    assert type(command) is COMMAND_TYPES[type_name]
    assert adapter.validate_json(command.model_dump_json(by_alias=True)) == command


def test_any_command_refuses_an_unknown_type() -> None:
    adapter = any_command_adapter()

    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        adapter.validate_python({**ENVELOPE, "type": "DeleteOrder"})


# ---------------------------------------------------------------- fingerprints


def test_fingerprint_of_a_quote_request_ignores_the_order_id() -> None:
    first = parse(SELL_QUOTE)
    retried = parse({**SELL_QUOTE, "orderId": str(UUID(int=9)), "commandId": str(UUID(int=10))})

    assert request_payload(first) == request_payload(retried)
    assert "order_id" not in request_payload(first)
    assert request_payload(first)["type"] == "RequestQuote"


def test_fingerprint_of_a_quote_request_changes_with_its_payload() -> None:
    first = parse(SELL_QUOTE)
    other = parse({**SELL_QUOTE, "sourceAmount": "251.000000"})

    assert request_payload(first) != request_payload(other)


@pytest.mark.parametrize("type_name", sorted(set(BODIES) - {"RequestQuote"}))
def test_fingerprint_of_other_commands_names_the_order(type_name: str) -> None:
    first = parse(BODIES[type_name])
    elsewhere = parse({**BODIES[type_name], "orderId": str(UUID(int=9))})

    assert request_payload(first) != request_payload(elsewhere)
    assert request_payload(first)["order_id"] == ENVELOPE["orderId"]


@pytest.mark.parametrize("type_name", sorted(BODIES))
def test_fingerprint_ignores_the_envelope(type_name: str) -> None:
    first = parse(BODIES[type_name])
    redelivered = parse(
        {
            **BODIES[type_name],
            "commandId": str(UUID(int=11)),
            "issuedAt": "2025-03-04T10:00:00Z",
            "actor": {"kind": "operator", "id": "someone-else"},
            "idempotencyKey": str(UUID(int=12)),
        }
    )

    assert request_payload(first) == request_payload(redelivered)


def test_fingerprint_tells_command_types_apart() -> None:
    cancel = CancelOrder.model_validate(BODIES["CancelOrder"])
    retry = parse(BODIES["RetryPayout"])

    assert request_payload(cancel) != request_payload(retry)


def test_fingerprint_of_a_payout_outcome_includes_its_attempt() -> None:
    first = RecordPayoutFailure.model_validate(BODIES["RecordPayoutFailure"])
    next_attempt = RecordPayoutFailure.model_validate(
        {**BODIES["RecordPayoutFailure"], "attempt": 3}
    )

    assert request_payload(first) != request_payload(next_attempt)
    assert request_payload(RecordPayout.model_validate(BODIES["RecordPayout"]))["attempt"] == 1


def test_request_payload_is_plain_json() -> None:
    payload = request_payload(ApproveOrder.model_validate(BODIES["ApproveOrder"]))

    assert json.loads(json.dumps(payload)) == payload
    assert payload["rate"] == "0.9210"
