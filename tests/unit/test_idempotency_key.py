from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application
from hypothesis import assume, given
from hypothesis import strategies as st

from domain.commands import RequestQuote
from domain.errors import DomainError, ErrorCode
from domain.idempotency import (
    IdempotencyKey,
    fingerprint,
    keeps,
    key_id,
    parse_key,
    request_payload,
)
from tests.unit.strategies import T0

CUSTOMER = UUID("5a0e2f9c-1b6d-4c3e-8f7a-9d2b4c6e8a01")
OTHER_CUSTOMER = UUID("5a0e2f9c-1b6d-4c3e-8f7a-9d2b4c6e8a02")
KEY = UUID("9c1d3e5f-7a9b-4c1d-8e3f-5a7b9c1d3e5f")

scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=10)
json_values = (
    scalars | st.lists(scalars, max_size=3) | st.dictionaries(st.text(max_size=5), scalars)
)
payloads = st.dictionaries(st.text(max_size=8), json_values, max_size=6)


def use_key(fingerprint_: str = "f" * 64, reply: dict[str, Any] | None = None) -> IdempotencyKey:
    return IdempotencyKey.use(
        customer_id=CUSTOMER,
        key=KEY,
        fingerprint=fingerprint_,
        command_id=UUID(int=1),
        reply=reply if reply is not None else {"ok": True, "status": 201},
        now=T0,
    )


# ---------------------------------------------------------------- key_id


def test_key_id_is_the_same_for_the_same_customer_and_key() -> None:
    assert key_id(CUSTOMER, KEY) == key_id(UUID(str(CUSTOMER)), UUID(str(KEY)))
    assert key_id(CUSTOMER, KEY).version == 5


def test_key_id_differs_between_customers_using_the_same_key() -> None:
    assert key_id(CUSTOMER, KEY) != key_id(OTHER_CUSTOMER, KEY)


@given(customers=st.lists(st.uuids(), min_size=2, max_size=2, unique=True), key=st.uuids())
def test_key_ids_of_different_customers_never_collide(customers: list[UUID], key: UUID) -> None:
    first, second = customers

    assert key_id(first, key) != key_id(second, key)


@given(customer=st.uuids(), keys=st.lists(st.uuids(), min_size=2, max_size=2, unique=True))
def test_key_ids_of_different_keys_never_collide(customer: UUID, keys: list[UUID]) -> None:
    first, second = keys

    assert key_id(customer, first) != key_id(customer, second)


# ---------------------------------------------------------------- fingerprint


@given(payload=payloads, data=st.data())
def test_fingerprint_is_stable_under_dict_key_order(
    payload: dict[str, Any], data: st.DataObject
) -> None:
    shuffled = dict(data.draw(st.permutations(list(payload.items()))))

    assert fingerprint(shuffled) == fingerprint(payload)


@given(first=payloads, second=payloads)
def test_fingerprints_differ_for_different_payloads(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    assume(first != second)

    assert fingerprint(first) != fingerprint(second)


def test_fingerprint_is_a_sha256_hex_digest() -> None:
    digest = fingerprint({"type": "RequestQuote", "sourceAmount": "250.000000"})

    assert len(digest) == 64
    assert int(digest, 16) >= 0


def test_retried_quote_request_with_a_new_order_id_has_the_same_fingerprint() -> None:
    body: dict[str, Any] = {
        "commandId": str(UUID(int=1)),
        "orderId": str(UUID(int=2)),
        "customerId": str(CUSTOMER),
        "actor": {"kind": "customer", "id": str(CUSTOMER)},
        "idempotencyKey": str(KEY),
        "issuedAt": "2025-03-03T09:00:00Z",
        "sourceId": str(UUID(int=3)),
        "destinationId": str(UUID(int=4)),
        "sourceAmount": "1000.00",
    }
    retried = {**body, "commandId": str(UUID(int=5)), "orderId": str(UUID(int=6))}
    changed = {**body, "sourceAmount": "1000.01"}

    def fingerprint_of(command_body: dict[str, Any]) -> str:
        return fingerprint(request_payload(RequestQuote.model_validate(command_body)))

    assert fingerprint_of(retried) == fingerprint_of(body)
    assert fingerprint_of(changed) != fingerprint_of(body)


# ---------------------------------------------------------------- the key aggregate


def test_used_key_is_identified_by_customer_and_key_and_keeps_the_reply() -> None:
    record = use_key(reply={"ok": True, "status": 201, "body": {"id": "x"}})

    assert record.id == key_id(CUSTOMER, KEY)
    assert (record.customer_id, record.key, record.command_id) == (CUSTOMER, KEY, UUID(int=1))
    assert record.reply == {"ok": True, "status": 201, "body": {"id": "x"}}
    assert record.created_on == T0


def test_same_request_under_a_used_key_is_accepted() -> None:
    record = use_key(fingerprint({"amount": "1.00"}))

    record.check_same_request(fingerprint({"amount": "1.00"}))

    assert record.version == 1


def test_other_request_under_a_used_key_is_idempotency_key_reused() -> None:
    record = use_key(fingerprint({"amount": "1.00"}))

    with pytest.raises(DomainError) as refusal:
        record.check_same_request(fingerprint({"amount": "2.00"}))

    assert refusal.value.code is ErrorCode.IDEMPOTENCY_KEY_REUSED
    assert refusal.value.status == 422


def test_used_key_reloads_with_its_reply() -> None:
    record = use_key(reply={"ok": True, "order": {"sourceAmount": "1000.00"}, "position": 7})
    app = Application[UUID](env={"PERSISTENCE_MODULE": "eventsourcing.popo"})

    app.save(record)

    assert app.repository.get(key_id(CUSTOMER, KEY)) == record


# ---------------------------------------------------------------- the header and what is kept


def test_a_key_is_a_canonical_uuid_v4() -> None:
    key = UUID("9b2f7a3c-1d4e-4f5a-8b6c-7d8e9f0a1b2c")

    assert parse_key(str(key)) == key
    assert parse_key(str(key).upper()) == key
    assert parse_key(None) is None


@pytest.mark.parametrize(
    "text",
    [
        "not-a-uuid",
        "9b2f7a3c1d4e4f5a8b6c7d8e9f0a1b2c",  # not in canonical form
        "{9b2f7a3c-1d4e-4f5a-8b6c-7d8e9f0a1b2c}",
        str(UUID(int=7)),  # version 0
        "6f1d7a8e-3c1b-5b7e-9a51-2f0c8d6e4b21",  # version 5
    ],
)
def test_anything_but_a_canonical_uuid_v4_is_an_invalid_key(text: str) -> None:
    with pytest.raises(DomainError) as refusal:
        parse_key(text)

    assert refusal.value.code is ErrorCode.IDEMPOTENCY_KEY_INVALID


@pytest.mark.parametrize(
    ("code", "kept"),
    [
        (ErrorCode.QUOTE_UNAVAILABLE, False),
        (ErrorCode.BALANCE_UNAVAILABLE, False),
        (ErrorCode.COMMAND_TIMEOUT, False),
        (ErrorCode.INTERNAL_ERROR, False),
        (ErrorCode.IDEMPOTENCY_KEY_IN_USE, False),
        (ErrorCode.QUOTE_EXPIRED, True),
        (ErrorCode.SOURCE_WALLET_INSUFFICIENT, True),
    ],
)
def test_only_answers_a_retry_cannot_change_are_kept(*, code: ErrorCode, kept: bool) -> None:
    assert keeps(DomainError(code, "x")) is kept
    assert keeps(None)
