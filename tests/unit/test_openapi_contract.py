"""The OpenAPI document is one a client can generate from: each route's scope, its error codes as
an enum of the problem schema (problem+json only), the Idempotency-Key as a UUID (required on
confirm), the headers clients act on, an example of every body that validates against its
schema, stable operationIds and described tags."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest

from services.gateway.app import create_app

PROBLEM = "application/problem+json"
DOCUMENT: dict[str, Any] = create_app().openapi()
OPERATIONS = {
    operation["operationId"]: (method, path, operation)
    for path, methods in DOCUMENT["paths"].items()
    for method, operation in methods.items()
}
API = {name: found for name, found in OPERATIONS.items() if found[2]["tags"] != ["health"]}


def answers(operation_id: str) -> dict[str, Any]:
    found: dict[str, Any] = OPERATIONS[operation_id][2]["responses"]
    return found


def codes(operation_id: str, status: int) -> list[str]:
    schema = answers(operation_id)[str(status)]["content"][PROBLEM]["schema"]
    [problem, narrowed] = schema["allOf"]
    assert problem == {"$ref": "#/components/schemas/Problem"}
    found: list[str] = narrowed["properties"]["code"]["enum"]
    return found


def test_operation_ids_are_the_route_names_in_camel_case() -> None:
    assert sorted(OPERATIONS) == sorted(
        [
            "listAccounts",
            "listWallets",
            "walletBalance",
            "requestQuote",
            "confirmQuote",
            "listOrders",
            "getOrder",
            "cancelOrder",
            "requoteOrder",
            "pendingQueue",
            "attentionQueue",
            "approveOrder",
            "rejectOrder",
            "retryPayout",
            "retryRefund",
            "orderHistory",
            "createEndpoint",
            "listEndpoints",
            "getEndpoint",
            "updateEndpoint",
            "deleteEndpoint",
            "rotateSecret",
            "sendTest",
            "listDeliveries",
            "replay",
            "liveness",
            "readiness",
        ]
    )


def test_every_operation_has_one_described_tag() -> None:
    described = {tag["name"] for tag in DOCUMENT["tags"] if tag.get("description")}

    assert all(
        len(op["tags"]) == 1 and op["tags"][0] in described for _, _, op in OPERATIONS.values()
    )


def scope_of(method: str, path: str) -> str:
    if path.startswith("/ops/"):
        return "otc-exchanges:operate"
    return "otc-exchanges:read" if method == "get" else "otc-exchanges:write"


@pytest.mark.parametrize("operation_id", sorted(API))
def test_every_route_requires_a_key_or_a_jwt_with_its_scope(operation_id: str) -> None:
    method, path, operation = API[operation_id]
    scope = [scope_of(method, path)]

    assert operation["security"] == [{"apiKey": scope}, {"bearerJwt": scope}]
    assert codes(operation_id, 401) == ["UNAUTHENTICATED"]
    assert codes(operation_id, 403) == ["INSUFFICIENT_SCOPE"]


@pytest.mark.parametrize("operation_id", sorted(API))
def test_errors_are_problems_only_with_their_codes_as_an_enum(operation_id: str) -> None:
    errors = {status: a for status, a in answers(operation_id).items() if int(status) >= 400}

    assert {"401", "403", "500", "503"} <= errors.keys()
    for status, answer in errors.items():
        assert list(answer["content"]) == [PROBLEM]
        assert answer["description"] == ", ".join(codes(operation_id, int(status)))
        assert answer["content"][PROBLEM]["example"]["code"] in codes(operation_id, int(status))


@pytest.mark.parametrize(
    ("operation_id", "status", "expected"),
    [
        (
            "confirmQuote",
            400,
            [
                "IDEMPOTENCY_KEY_INVALID",
                "IDEMPOTENCY_KEY_REQUIRED",
                "MALFORMED_BODY",
                "QUOTE_EXPIRED",
            ],
        ),
        ("confirmQuote", 422, ["IDEMPOTENCY_KEY_REUSED", "SIDE_MISMATCH", "VALIDATION_ERROR"]),
        ("walletBalance", 404, ["WALLET_NOT_FOUND"]),
        ("walletBalance", 502, ["BALANCE_UNAVAILABLE"]),
        ("requestQuote", 502, ["QUOTE_UNAVAILABLE"]),
        ("cancelOrder", 409, ["IDEMPOTENCY_KEY_IN_USE", "NOT_CANCELLABLE"]),
        ("listOrders", 422, ["VALIDATION_ERROR"]),
        ("getEndpoint", 503, ["SERVICE_UNAVAILABLE", "WEBHOOKS_UNAVAILABLE"]),
        (
            "approveOrder",
            409,
            ["IDEMPOTENCY_KEY_IN_USE", "INVALID_TRANSITION", "SAME_APPROVER", "SLIPPAGE_EXCEEDED"],
        ),
    ],
)
def test_a_route_lists_its_own_codes_and_those_it_implies(
    operation_id: str, status: int, expected: list[str]
) -> None:
    assert codes(operation_id, status) == expected


def test_a_route_without_parameters_or_body_has_no_validation_error() -> None:
    assert "422" not in answers("listAccounts")
    assert "400" not in answers("listWallets")


def idempotency_key(operation_id: str) -> dict[str, Any] | None:
    found = [
        p
        for p in OPERATIONS[operation_id][2].get("parameters", [])
        if p["name"] == "Idempotency-Key"
    ]
    return found[0] if found else None


def test_confirm_requires_an_idempotency_key_that_is_a_uuid() -> None:
    assert idempotency_key("confirmQuote") == {
        "name": "Idempotency-Key",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
        "description": "a UUID v4; the same key replays the first answer",
    }


@pytest.mark.parametrize(
    "operation_id",
    sorted(
        name for name, (method, _, _) in API.items() if method == "post" and name != "confirmQuote"
    ),
)
def test_every_other_post_accepts_an_optional_uuid_key(operation_id: str) -> None:
    key = idempotency_key(operation_id)

    assert key is not None
    assert (key["required"], key["schema"]) == (False, {"type": "string", "format": "uuid"})


def headers(operation_id: str, status: int) -> set[str]:
    return set(answers(operation_id)[str(status)].get("headers", {}))


def test_a_201_documents_its_location() -> None:
    created = [name for name in OPERATIONS if "201" in answers(name)]

    assert sorted(created) == ["confirmQuote", "createEndpoint"]
    assert all("Location" in headers(name, 201) for name in created)


def test_routes_that_replay_by_key_document_idempotent_replayed() -> None:
    replaying = {
        name
        for name in OPERATIONS
        if any("Idempotent-Replayed" in a.get("headers", {}) for a in answers(name).values())
    }

    assert replaying == {
        "requestQuote",
        "confirmQuote",
        "cancelOrder",
        "requoteOrder",
        "approveOrder",
        "rejectOrder",
        "retryPayout",
        "retryRefund",
        "createEndpoint",
    }


def test_every_502_503_and_504_documents_retry_after() -> None:
    retried = [
        (name, int(status))
        for name in OPERATIONS
        for status in answers(name)
        if int(status) in {502, 503, 504}
    ]

    assert retried
    assert all("Retry-After" in headers(name, status) for name, status in retried)


def bodies() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, (_, _, operation) in OPERATIONS.items():
        for content in [operation.get("requestBody", {}).get("content", {})] + [
            a.get("content", {}) for a in operation["responses"].values()
        ]:
            for media in content.values():
                yield name, media


def examples(media: dict[str, Any]) -> list[Any]:
    if "examples" in media:
        return [named["value"] for named in media["examples"].values()]
    return [media["example"]] if "example" in media else []


def test_every_body_has_an_example_that_its_schema_accepts() -> None:
    components = DOCUMENT["components"]
    checked = 0
    for name, media in bodies():
        found = examples(media)
        assert found, f"{name}: a body without an example"
        validator = jsonschema_rs.Draft202012Validator(
            {**media["schema"], "components": components}
        )
        for example in found:
            errors = [error.message for error in validator.iter_errors(example)]
            assert not errors, f"{name}: {errors}"
            checked += 1

    assert checked > 100


def test_the_schemas_refuse_what_the_api_never_answers() -> None:
    """The example check above can fail: a wrong code or a missing field is refused."""
    components = DOCUMENT["components"]
    media = answers("getOrder")["404"]["content"][PROBLEM]
    validator = jsonschema_rs.Draft202012Validator({**media["schema"], "components": components})
    order = answers("getOrder")["200"]["content"]["application/json"]
    orders = jsonschema_rs.Draft202012Validator({**order["schema"], "components": components})

    assert not validator.is_valid({**media["example"], "code": "QUOTE_EXPIRED"})
    assert not orders.is_valid({k: v for k, v in order["example"].items() if k != "status"})
