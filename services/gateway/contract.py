"""The OpenAPI document a client generates from (`GET /openapi.json`): FastAPI's, with what each
route implies written out by one function, `describe`, from the route's own error codes (its
`responses`, services/gateway/problems.py) and its security requirement (its scope, from
services/gateway/auth.py):

- every error a route can answer, as `application/problem+json` whose `code` is an enum of the
  route's codes at that status: its own, and those its credentials (401, 403), its parameters
  and body (422 VALIDATION_ERROR, 400 MALFORMED_BODY) and the gateway itself (500, 503) imply;
- `Idempotency-Key` as a UUID, required where the route refuses a request without one
  (IDEMPOTENCY_KEY_REQUIRED), optional elsewhere; `Idempotent-Replayed` on the success of a
  route that keeps its answers by key (it can answer IDEMPOTENCY_KEY_REUSED);
- `Location` on a 201, `Retry-After` on a 502, 503 or 504;
- an example on every request body and response (services/gateway/examples.py);
- `operationId`s from the routes' function names (`confirmQuote`), and the tags described.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic.alias_generators import to_camel

from domain.errors import ErrorCode
from services.gateway.commands import IDEMPOTENT_REPLAYED
from services.gateway.examples import EXAMPLES
from services.gateway.headers import DOCUMENTED, LOCATION, RETRYABLE
from services.gateway.problems import Problem, codes_of, responses
from services.http_errors import RETRY_AFTER

REF = "#/components/schemas/"
IDEMPOTENCY_KEY = "Idempotency-Key"
TAGS = [
    {"name": "otc-exchanges", "description": "Your resources, quotes and orders (seed 000)."},
    {"name": "operations", "description": "The operators' queues and decisions."},
    {"name": "webhooks", "description": "Your webhook endpoints and their deliveries."},
    {"name": "health", "description": "Whether the gateway and its dependencies answer."},
]
FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
"""FastAPI's own 422 schemas, which this API never answers (its 422 is a problem)."""


def operation_id(route: APIRoute) -> str:
    """A stable `operationId`: the route function's name in camelCase (`confirmQuote`)."""
    return to_camel(route.name)


class Api(FastAPI):
    """FastAPI whose OpenAPI document is completed by `describe`, once each time FastAPI makes
    it anew (it does when the routes change)."""

    described: dict[str, Any] | None = None

    def openapi(self) -> dict[str, Any]:
        document = super().openapi()
        if document is not self.described:
            for path in document["paths"].values():
                for operation in path.values():
                    describe(operation)
            components(document)
            self.described = document
        return document


def describe(operation: dict[str, Any]) -> None:
    """Write out what the route implies (see the module's docstring)."""
    codes = errors(operation)
    for parameter in operation.get("parameters", []):
        if parameter["name"] == IDEMPOTENCY_KEY:
            parameter["required"] = ErrorCode.IDEMPOTENCY_KEY_REQUIRED in codes
            parameter["schema"] = {"type": "string", "format": "uuid"}
    headers(operation["responses"], codes)
    for media in media_types(operation):
        exemplify(media)


def errors(operation: dict[str, Any]) -> set[str]:
    """Every code a route can answer, its error responses rewritten to name them."""
    answers: dict[str, Any] = operation["responses"]
    codes: set[str] = set().union(*(codes_of(answer) for answer in answers.values()))
    if operation.get("security"):
        codes |= implied(operation)
        for status in [status for status in answers if int(status) >= 400]:  # noqa: PLR2004
            del answers[status]
        answers.update({str(s): a for s, a in responses(*map(ErrorCode, codes)).items()})
    return codes


def headers(answers: dict[str, Any], codes: set[str]) -> None:
    success = min(answers)  # the route's own status: 200, 201, 202 or 204
    if success == "201":
        answers[success].setdefault("headers", {})[LOCATION] = DOCUMENTED[LOCATION]
    if ErrorCode.IDEMPOTENCY_KEY_REUSED in codes:
        replayed = DOCUMENTED[IDEMPOTENT_REPLAYED]
        answers[success].setdefault("headers", {})[IDEMPOTENT_REPLAYED] = replayed
    for status, answer in answers.items():
        if int(status) in RETRYABLE:
            answer.setdefault("headers", {})[RETRY_AFTER] = DOCUMENTED[RETRY_AFTER]


def implied(operation: dict[str, Any]) -> set[str]:
    """The codes a secured route can answer whatever it does."""
    codes = {ErrorCode.UNAUTHENTICATED, ErrorCode.INTERNAL_ERROR, ErrorCode.SERVICE_UNAVAILABLE}
    if any(scopes for requirement in operation["security"] for scopes in requirement.values()):
        codes.add(ErrorCode.INSUFFICIENT_SCOPE)
    if operation.get("parameters") or "requestBody" in operation:
        codes.add(ErrorCode.VALIDATION_ERROR)
    if "requestBody" in operation:
        codes.add(ErrorCode.MALFORMED_BODY)
    return {code.value for code in codes}


def media_types(operation: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for body in [operation.get("requestBody", {}), *operation["responses"].values()]:
        yield from body.get("content", {}).values()


def exemplify(media: dict[str, Any]) -> None:
    """The example of the model a body is, or one example of each model it may be."""
    if "example" in media or "examples" in media:
        return
    schema = media.get("schema", {})
    alternatives = schema.get("oneOf") or schema.get("anyOf") or [schema]
    names = [part["$ref"].removeprefix(REF) for part in alternatives if "$ref" in part]
    found = {name: EXAMPLES[name] for name in names if name in EXAMPLES}
    if len(found) == 1:
        media["example"] = next(iter(found.values()))
    elif found:
        media["examples"] = {
            name: {"summary": name, "value": value} for name, value in found.items()
        }


def components(document: dict[str, Any]) -> None:
    """The problem's schemas in, FastAPI's unused validation schemas out, an example on each
    model that has one."""
    schemas: dict[str, Any] = document["components"]["schemas"]
    for name in FASTAPI_VALIDATION:
        schemas.pop(name, None)
    problem = Problem.model_json_schema(
        by_alias=True, mode="serialization", ref_template=REF + "{model}"
    )
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for name, example in EXAMPLES.items():
        if name in schemas:
            schemas[name]["examples"] = [example]
