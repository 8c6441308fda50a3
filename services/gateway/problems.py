"""Errors as `application/problem+json` with a stable `code` (DESIGN.md section 6), and the
OpenAPI documentation of every error a route can answer."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import HTTP_STATUS, DomainError, ErrorCode
from services.gateway.schemas import UNION_TAGS

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    """One thing wrong with a request."""

    field: str | None = Field(
        default=None,
        description="the field at fault, as a dotted path in the request's spelling "
        "(sourceAmount, eventTypes.0); absent for the request as a whole",
    )
    detail: str = Field(description="what is wrong with it")


class Problem(BaseModel):
    """RFC 9457 problem details with this API's stable error code."""

    type: str = Field(description="a URI naming the problem type")
    title: str = Field(description="a short summary of the problem type")
    status: int = Field(description="the HTTP status")
    code: str = Field(description="the stable error code, e.g. QUOTE_EXPIRED")
    detail: str = Field(description="what happened, for people")
    field: str | None = Field(
        default=None, description="the request field at fault (the first, if several are)"
    )
    errors: list[FieldError] | None = Field(
        default=None, description="on a VALIDATION_ERROR: everything wrong with the request"
    )
    correlation_id: str | None = Field(
        default=None,
        serialization_alias="correlationId",
        description="the request's correlation id (also the X-Correlation-Id header), on a 5xx",
    )


def problem_of(status: int, code: str, detail: str, **members: Any) -> Problem:  # noqa: ANN401 - Problem's optional members
    return Problem(
        type=f"https://docs.otc.example/problems/{code.lower().replace('_', '-')}",
        title=code.replace("_", " ").capitalize(),
        status=status,
        code=code,
        detail=detail,
        **members,
    )


def problem_response(  # noqa: PLR0913 - the members of a problem, by name
    status: int,
    code: str,
    detail: str,
    *,
    field: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    correlation_id: str | None = None,
) -> JSONResponse:
    body = problem_of(
        status, code, detail, field=field, errors=errors, correlation_id=correlation_id
    )
    return JSONResponse(
        body.model_dump(exclude_none=True, by_alias=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def render_problem(
    status: int, code: str, detail: str, headers: dict[str, str], correlation_id: str
) -> Response:
    """The gateway's shape for `services.http_errors.ErrorGuard`: a problem with the id."""
    return problem_response(status, code, detail, headers=headers, correlation_id=correlation_id)


def from_domain(error: DomainError, headers: dict[str, str] | None = None) -> JSONResponse:
    return problem_response(
        error.status, error.code.value, error.message, field=error.field, headers=headers
    )


class ApiError(Exception):
    """Raised by routes and dependencies; answered as a problem."""

    def __init__(
        self,
        code: ErrorCode,
        detail: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.field = field
        self.headers = headers


async def on_api_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)  # noqa: S101 - registered for ApiError only
    return problem_response(
        HTTP_STATUS[error.code],
        error.code.value,
        error.detail,
        field=error.field,
        headers=error.headers,
    )


LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


def field_error(error: dict[str, Any]) -> FieldError:
    """One of pydantic's errors with its field in the request's own spelling: no location
    kind, no union tag; an error of a union's discriminator names the discriminating field."""
    path = [str(part) for part in error.get("loc", ()) if part not in LOCATIONS | UNION_TAGS]
    discriminator = str(error.get("ctx", {}).get("discriminator", "")).strip("'")
    if discriminator.isidentifier():
        path.append(discriminator)
    return FieldError(field=".".join(path) or None, detail=str(error.get("msg", "invalid")))


async def on_validation_error(_: Request, error: Exception) -> JSONResponse:
    """422 VALIDATION_ERROR listing every field at fault; `field` names the first."""
    assert isinstance(error, RequestValidationError)  # noqa: S101 - registered for it only
    errors = [field_error(found) for found in error.errors()] or [
        FieldError(field=None, detail="invalid request")
    ]
    detail = "; ".join(f"{e.field}: {e.detail}" if e.field else e.detail for e in errors)
    return problem_response(
        422, ErrorCode.VALIDATION_ERROR.value, detail, field=errors[0].field, errors=errors
    )


ROUTING_CODES = {400: ErrorCode.MALFORMED_BODY.value, 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
"""What FastAPI and Starlette refuse themselves: a body that cannot be read (not UTF-8, say), an
unknown path, a method the path does not have."""


async def on_http_error(_: Request, error: Exception) -> JSONResponse:
    """FastAPI's and Starlette's own refusals as problems too."""
    assert isinstance(error, StarletteHTTPException)  # noqa: S101
    code = ROUTING_CODES.get(error.status_code, "HTTP_ERROR")
    return problem_response(
        error.status_code, code, str(error.detail), headers=dict(error.headers or {})
    )


PROBLEM_REF = "#/components/schemas/Problem"


def responses(*codes: ErrorCode) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a route's own error codes, by HTTP status. Those that its
    credentials, parameters and body imply are added by services/gateway/contract.py."""
    by_status: dict[int, set[str]] = {}
    for code in codes:
        by_status.setdefault(HTTP_STATUS[code], set()).add(code.value)
    return {status: documented(status, names) for status, names in sorted(by_status.items())}


def documented(status: int, codes: set[str]) -> dict[str, Any]:
    """One status's OpenAPI response: a problem whose `code` is one of `codes`, with an example."""
    names = sorted(codes)
    narrowed = {"type": "object", "properties": {"code": {"type": "string", "enum": names}}}
    return {
        "description": ", ".join(names),
        "content": {
            PROBLEM_JSON: {
                "schema": {"allOf": [{"$ref": PROBLEM_REF}, narrowed]},
                "example": example_problem(status, names[0]),
            }
        },
    }


def codes_of(response: dict[str, Any]) -> set[str]:
    """The codes a response that `documented` made names (none for any other)."""
    schema = response.get("content", {}).get(PROBLEM_JSON, {}).get("schema", {})
    parts = schema.get("allOf", [{}, {}])
    return set(parts[-1].get("properties", {}).get("code", {}).get("enum", ()))


def example_problem(status: int, code: str) -> dict[str, Any]:
    detail, members = code.replace("_", " ").lower(), {}
    if code == ErrorCode.VALIDATION_ERROR:
        wrong = FieldError(field="sourceAmount", detail="String should match pattern")
        detail, members = (
            f"{wrong.field}: {wrong.detail}",
            {"field": wrong.field, "errors": [wrong]},
        )
    elif status >= 500:  # noqa: PLR2004 - a server's error names its correlation id
        members = {"correlation_id": "4c1d0f8e2a9b4e7d"}
    problem = problem_of(status, code, detail, **members)
    return problem.model_dump(mode="json", by_alias=True, exclude_none=True)
