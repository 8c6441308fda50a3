"""Stable error codes with their HTTP statuses, and the one exception the domain raises."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    # Authentication and request shape.
    UNAUTHENTICATED = "UNAUTHENTICATED"
    INSUFFICIENT_SCOPE = "INSUFFICIENT_SCOPE"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    IDEMPOTENCY_KEY_REQUIRED = "IDEMPOTENCY_KEY_REQUIRED"
    IDEMPOTENCY_KEY_INVALID = "IDEMPOTENCY_KEY_INVALID"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    IDEMPOTENCY_KEY_IN_USE = "IDEMPOTENCY_KEY_IN_USE"
    # Resources (seed: buy).
    SOURCE_NOT_FOUND = "SOURCE_NOT_FOUND"
    SOURCE_WRONG_CURRENCY = "SOURCE_WRONG_CURRENCY"
    SOURCE_INACTIVE = "SOURCE_INACTIVE"
    DESTINATION_NOT_FOUND = "DESTINATION_NOT_FOUND"
    DESTINATION_NO_USDC_ADDRESS = "DESTINATION_NO_USDC_ADDRESS"
    # Resources (seed: sell).
    SOURCE_WALLET_NOT_FOUND = "SOURCE_WALLET_NOT_FOUND"
    SOURCE_WALLET_NO_USDC = "SOURCE_WALLET_NO_USDC"
    SOURCE_WALLET_INSUFFICIENT = "SOURCE_WALLET_INSUFFICIENT"
    DESTINATION_ACCOUNT_NOT_FOUND = "DESTINATION_ACCOUNT_NOT_FOUND"
    DESTINATION_ACCOUNT_WRONG_CURRENCY = "DESTINATION_ACCOUNT_WRONG_CURRENCY"
    DESTINATION_ACCOUNT_INACTIVE = "DESTINATION_ACCOUNT_INACTIVE"
    WALLET_NOT_FOUND = "WALLET_NOT_FOUND"
    # Amounts.
    AMOUNT_BELOW_MINIMUM = "AMOUNT_BELOW_MINIMUM"
    AMOUNT_ABOVE_MAXIMUM = "AMOUNT_ABOVE_MAXIMUM"
    # Order lifecycle.
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    QUOTE_EXPIRED = "QUOTE_EXPIRED"
    NOT_CANCELLABLE = "NOT_CANCELLABLE"
    SIDE_MISMATCH = "SIDE_MISMATCH"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    SLIPPAGE_EXCEEDED = "SLIPPAGE_EXCEEDED"
    # Upstream and infrastructure.
    BALANCE_UNAVAILABLE = "BALANCE_UNAVAILABLE"
    QUOTE_UNAVAILABLE = "QUOTE_UNAVAILABLE"
    COMMAND_TIMEOUT = "COMMAND_TIMEOUT"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.INSUFFICIENT_SCOPE: 403,
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.IDEMPOTENCY_KEY_REQUIRED: 400,
    ErrorCode.IDEMPOTENCY_KEY_INVALID: 400,
    ErrorCode.IDEMPOTENCY_KEY_REUSED: 422,
    ErrorCode.IDEMPOTENCY_KEY_IN_USE: 409,
    ErrorCode.SOURCE_NOT_FOUND: 422,
    ErrorCode.SOURCE_WRONG_CURRENCY: 422,
    ErrorCode.SOURCE_INACTIVE: 422,
    ErrorCode.DESTINATION_NOT_FOUND: 422,
    ErrorCode.DESTINATION_NO_USDC_ADDRESS: 422,
    ErrorCode.SOURCE_WALLET_NOT_FOUND: 422,
    ErrorCode.SOURCE_WALLET_NO_USDC: 422,
    ErrorCode.SOURCE_WALLET_INSUFFICIENT: 422,
    ErrorCode.DESTINATION_ACCOUNT_NOT_FOUND: 422,
    ErrorCode.DESTINATION_ACCOUNT_WRONG_CURRENCY: 422,
    ErrorCode.DESTINATION_ACCOUNT_INACTIVE: 422,
    ErrorCode.WALLET_NOT_FOUND: 404,
    ErrorCode.AMOUNT_BELOW_MINIMUM: 422,
    ErrorCode.AMOUNT_ABOVE_MAXIMUM: 422,
    ErrorCode.ORDER_NOT_FOUND: 404,
    ErrorCode.QUOTE_EXPIRED: 400,
    ErrorCode.NOT_CANCELLABLE: 409,
    ErrorCode.SIDE_MISMATCH: 422,
    ErrorCode.INVALID_TRANSITION: 409,
    ErrorCode.SLIPPAGE_EXCEEDED: 409,
    ErrorCode.BALANCE_UNAVAILABLE: 502,
    ErrorCode.QUOTE_UNAVAILABLE: 502,
    ErrorCode.COMMAND_TIMEOUT: 504,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
}

# Failures of an outside party or of the platform: a retry may succeed, so their replies are
# never stored against an idempotency key.
TRANSIENT_CODES = frozenset(
    {
        ErrorCode.BALANCE_UNAVAILABLE,
        ErrorCode.QUOTE_UNAVAILABLE,
        ErrorCode.COMMAND_TIMEOUT,
        ErrorCode.INTERNAL_ERROR,
        ErrorCode.SERVICE_UNAVAILABLE,
        ErrorCode.IDEMPOTENCY_KEY_IN_USE,
    },
)


class DomainError(Exception):
    """A refused command or request: a stable code, a message for people, the field at fault."""

    def __init__(self, code: ErrorCode, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]

    def __repr__(self) -> str:
        return f"DomainError({self.code.value}, {self.message!r})"
