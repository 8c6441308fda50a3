"""API keys without a database: their format, parsing, scope rules and what a record holds."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import fields
from uuid import UUID

import pytest

from services.auth.keys import (
    ApiKeyRecord,
    InvalidApiKeyError,
    check_key_name,
    check_key_scopes,
    issue_key,
    key_hash,
    key_prefix,
)
from services.auth.principal import OperatorIdentity, Principal, Scope
from services.resources.port import PLATFORM_CUSTOMER_ID

CUSTOMER = UUID("0b6f1c2e-8d3a-4f5b-9c7d-1e2f3a4b5c6d")
KEY_SHAPE = re.compile(r"otc_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{43}")


def test_issued_key_is_otc_a_public_prefix_and_a_32_byte_secret() -> None:
    issued = issue_key()

    assert KEY_SHAPE.fullmatch(issued.plaintext)
    tag, prefix, secret = issued.plaintext.split("_", 2)
    assert (tag, prefix) == ("otc", issued.prefix)
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32


def test_issued_keys_are_random() -> None:
    issued = [issue_key() for _ in range(50)]

    assert len({key.plaintext for key in issued}) == 50
    assert len({key.prefix for key in issued}) == 50


def test_only_the_sha256_of_the_key_is_kept_for_the_store() -> None:
    issued = issue_key()

    assert issued.secret_hash == hashlib.sha256(issued.plaintext.encode()).digest()
    assert issued.secret_hash == key_hash(issued.plaintext)


def test_issued_key_repr_shows_neither_the_key_nor_its_hash() -> None:
    issued = issue_key()

    text = repr(issued)

    assert issued.prefix in text
    assert issued.plaintext.split("_", 2)[2] not in text
    assert issued.secret_hash.hex() not in text
    assert repr(issued.secret_hash) not in text


def test_prefix_is_read_from_a_well_formed_key() -> None:
    issued = issue_key()

    assert key_prefix(issued.plaintext) == issued.prefix


@pytest.mark.parametrize(
    "value",
    [
        "",
        "otc_",
        "otc__",
        "abc_AAAAAAAAAAAA_" + "A" * 43,
        "OTC_AAAAAAAAAAAA_" + "A" * 43,
        "otc_AAAAAAAAAAA-_" + "A" * 43,
        "otc_AAAAAAAAAAA_" + "A" * 44,
        "otc_AAAAAAAAAAAA_" + "A" * 42,
        "otc_AAAAAAAAAAAA_" + "A" * 44,
        "otc_AAAAAAAAAAAA_" + "A" * 42 + "=",
        "otc_AAAAAAAAAAAA_" + "A" * 42 + "\n",
        " otc_AAAAAAAAAAAA_" + "A" * 42,
        "otc_AAAAAAAAAAA\u0663_" + "A" * 43,
        "otc_AAAAAAAAAAAA:" + "A" * 43,
        "x" * 10_000,
    ],
)
def test_malformed_key_has_no_prefix(value: str) -> None:
    assert key_prefix(value) is None


def test_customer_key_may_read_and_write() -> None:
    granted = check_key_scopes(CUSTOMER, [Scope.READ, Scope.WRITE, Scope.READ])

    assert granted == {Scope.READ, Scope.WRITE}


def test_operator_key_of_the_platform_customer_is_accepted() -> None:
    assert check_key_scopes(PLATFORM_CUSTOMER_ID, [Scope.OPERATE, Scope.READ]) == {
        Scope.OPERATE,
        Scope.READ,
    }


@pytest.mark.parametrize(
    ("customer_id", "scopes", "message"),
    [
        (CUSTOMER, [], "at least one scope"),
        (CUSTOMER, ["otc-exchanges:admin"], "unknown scope otc-exchanges:admin"),
        (CUSTOMER, [Scope.READ, "read"], "unknown scope read"),
        (CUSTOMER, Scope.READ.value, "not one string"),
        (CUSTOMER, [Scope.OPERATE], "only the platform customer"),
        (CUSTOMER, [Scope.READ, Scope.OPERATE], "only the platform customer"),
        (PLATFORM_CUSTOMER_ID, [Scope.READ], "operator keys"),
    ],
)
def test_key_scopes_are_refused(customer_id: UUID, scopes: list[str], message: str) -> None:
    with pytest.raises(InvalidApiKeyError, match=message):
        check_key_scopes(customer_id, scopes)


def test_key_name_is_trimmed_and_must_not_be_blank_or_too_long() -> None:
    assert check_key_name("  CI deploy ") == "CI deploy"
    with pytest.raises(InvalidApiKeyError, match="must not be empty"):
        check_key_name("   ")
    with pytest.raises(InvalidApiKeyError, match="longer than 200"):
        check_key_name("k" * 201)


def test_key_record_has_no_field_for_the_secret_or_its_hash() -> None:
    assert {field.name for field in fields(ApiKeyRecord)} == {
        "id",
        "customer_id",
        "name",
        "scopes",
        "prefix",
        "created_at",
        "revoked_at",
        "last_used_at",
        "operator",
    }


def test_principal_answers_for_its_scopes() -> None:
    principal = Principal(CUSTOMER, frozenset({Scope.READ}), subject="k1", via="api-key")

    assert principal.has(Scope.READ)
    assert principal.has("otc-exchanges:read")
    assert not principal.has(Scope.WRITE)
    assert not principal.is_operator


def test_only_the_platform_customer_can_be_an_operator_principal() -> None:
    ada = OperatorIdentity(UUID(int=9), "Ada Lovelace")
    operator = Principal(PLATFORM_CUSTOMER_ID, frozenset({Scope.OPERATE}), "k2", "api-key", ada)

    assert operator.is_operator
    with pytest.raises(ValueError, match="only the platform customer"):
        Principal(CUSTOMER, frozenset({Scope.OPERATE}), subject="k3", via="jwt", operator=ada)


def test_an_operator_principal_names_its_operator_and_only_it_does() -> None:
    with pytest.raises(ValueError, match="goes with the operator"):
        Principal(PLATFORM_CUSTOMER_ID, frozenset({Scope.OPERATE}), "k2", "api-key")
    with pytest.raises(ValueError, match="goes with the operator"):
        Principal(
            CUSTOMER,
            frozenset({Scope.READ}),
            "k4",
            "api-key",
            OperatorIdentity(UUID(int=9), "Ada Lovelace"),
        )
