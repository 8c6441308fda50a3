"""The wire conventions the sandboxes share: refusals as `{"code", "message"}` bodies, JSON bodies
parsed with `Decimal` numbers, money checks and timestamps."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

Model = TypeVar("Model", bound=BaseModel)

# Amounts are below 10**15 in any currency, far above anything a test moves.
MAX_DIGITS_BEFORE_POINT = 15
REFERENCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class SandboxError(Exception):
    """A refusal answered as `{"code", "message", **extra}` with an HTTP status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: str,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"code": code, "message": message, **(extra or {})}
    return JSONResponse(body, status_code=status, headers=headers)


class CamelModel(BaseModel):
    """A request body: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number")


def json_body(model: type[Model]) -> Callable[[Request], Awaitable[Model]]:
    """A dependency parsing the body with JSON numbers as `Decimal` (never float), then `model`."""

    async def parse(request: Request) -> Model:
        try:
            data = json.loads(
                await request.body(),
                parse_float=Decimal,
                parse_constant=_refuse_constant,
            )
        except ValueError:
            raise SandboxError(400, "VALIDATION_ERROR", "the body is not valid JSON") from None
        try:
            return model.model_validate(data)
        except ValidationError as error:
            raise validation_error(error.errors()) from None

    return parse


def validation_error(errors: Sequence[object]) -> SandboxError:
    first = errors[0] if errors else {}
    if not isinstance(first, dict):
        return SandboxError(400, "VALIDATION_ERROR", "the request is invalid")
    field = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg"))
    return SandboxError(400, "VALIDATION_ERROR", message, field=field)


def decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def checked_amount(value: Decimal, places: int, *, field: str, allow_zero: bool = False) -> Decimal:
    """A non-negative (or positive) finite amount with at most `places`, at exactly `places`."""
    if not value.is_finite():
        raise SandboxError(400, "INVALID_AMOUNT", f"{field} is not a finite number", field=field)
    if value < 0 or (value == 0 and not allow_zero):
        raise SandboxError(400, "INVALID_AMOUNT", f"{field} must be positive", field=field)
    if value != 0 and value.adjusted() >= MAX_DIGITS_BEFORE_POINT:
        raise SandboxError(400, "INVALID_AMOUNT", f"{field} is too large", field=field)
    if decimal_places(value) > places:
        raise SandboxError(
            400,
            "INVALID_AMOUNT",
            f"{field} has more than {places} decimal places",
            field=field,
        )
    return value.quantize(Decimal(1).scaleb(-places))


def money(value: Decimal, places: int) -> str:
    """A decimal string with exactly `places` places, never in exponent notation."""
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


def utc_now() -> datetime:
    """Now in UTC, to the millisecond (what the wire format carries)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
