"""Request and response bodies of the REST API (camelCase on the wire, DESIGN.md section 6)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    StringConstraints,
    Tag,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from domain.order import Side
from domain.views import ApprovalFact, OrderView, UnresolvedFact

AmountText = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{1,15}(\.[0-9]{1,18})?$", strip_whitespace=False),
    Field(description="a decimal string, e.g. 1000.00 (EUR, 2 places) or 250.000000 (USDC, 6)"),
]
RateText = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{1,6}(\.[0-9]{1,18})?$"),
    Field(description="destination units per source unit, as a decimal string"),
]


class Body(BaseModel):
    """A request or response body. No text in it holds a NUL character: PostgreSQL can store
    none (a webhook's description, an operator's reason), so a request with one is a 422."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    @field_validator("*")
    @classmethod
    def has_no_nul(cls, value: object) -> object:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("text must not contain a NUL character")
        return value


class BuyQuoteRequest(Body):
    side: Literal["buy"] = Field(default="buy", description="buy: EUR -> USDC (the default)")
    source_account_id: UUID = Field(
        description="one of your EUR accounts (GET /otc-exchanges/accounts)"
    )
    destination_wallet_id: UUID = Field(
        description="one of your wallets (GET /otc-exchanges/wallets)"
    )
    source_amount: AmountText


class SellQuoteRequest(Body):
    side: Literal["sell"] = Field(description="sell: USDC -> EUR")
    source_wallet_id: UUID = Field(description="one of your wallets with a USDC address")
    destination_account_id: UUID = Field(description="one of your EUR accounts")
    source_amount: AmountText


UNION_TAGS = frozenset(side.value for side in Side)
"""The tags of the request bodies' unions, which pydantic puts in an error's location and the
API leaves out of a field's path."""
SELL_ONLY = frozenset({"sourceWalletId", "destinationAccountId"})


def side_of(body: object) -> str | None:
    """The side a quote request is for: its `side`; without one, a buy unless the body names a
    sell's resources (then it is a sell missing its `side`, and told so). An unknown side is
    no side (None: the union's error, which names `side`)."""
    if not isinstance(body, dict):
        return str(getattr(body, "side", Side.BUY.value))
    side = body.get("side")
    if side is None:
        return Side.SELL.value if SELL_ONLY & body.keys() else Side.BUY.value
    return side if isinstance(side, str) and side in UNION_TAGS else None


QuoteBody = Annotated[
    Annotated[BuyQuoteRequest, Tag(Side.BUY.value)]
    | Annotated[SellQuoteRequest, Tag(Side.SELL.value)],
    Discriminator(
        side_of,
        custom_error_type="side_invalid",
        custom_error_message="side must be buy or sell",
        custom_error_context={"discriminator": "side"},
    ),
]
"""A quote request: a buy, unless `side` says sell."""


class ConfirmRequest(Body):
    quote_id: UUID = Field(description="the quote's id, which is the order id")
    side: Side = Field(default=Side.BUY, description="the quote's side; defaults to buy")
    max_slippage_bps: StrictInt | None = Field(
        default=None,
        ge=0,
        le=10_000,
        description="refuse an approval whose final rate is worse than the quote by more",
    )


class ApproveRequest(Body):
    rate: RateText | None = Field(
        default=None,
        description="the final rate, within the price collar of the live rate unless overridden;"
        " omitted: the live rate",
    )
    override: bool = Field(
        default=False, description="approve a rate outside the collar; needs a rate and a reason"
    )
    reason: str | None = Field(
        default=None, min_length=1, max_length=500, description="why the collar is overridden"
    )

    @field_validator("rate")
    @classmethod
    def rate_is_positive(cls, rate: str | None) -> str | None:
        if rate is not None and Decimal(rate) <= 0:
            raise ValueError("the rate must be greater than 0")
        return rate

    @model_validator(mode="after")
    def override_is_explained(self) -> ApproveRequest:
        if self.override and (self.rate is None or self.reason is None or not self.reason.strip()):
            raise ValueError("an override needs an explicit rate and a reason")
        return self


class RejectRequest(Body):
    reason: str = Field(default="rejected by operator", min_length=1, max_length=500)


class Account(Body):
    id: UUID
    name: str
    currency: str
    status: str
    iban_last4: str


class Wallet(Body):
    id: UUID
    label: str
    network: str
    usdc_address: str


class AccountList(Body):
    data: list[Account]


class WalletList(Body):
    data: list[Wallet]


class WalletBalance(Body):
    wallet_id: UUID
    network: str
    usdc_balance: str = Field(description="a decimal string with 6 places")


class OrderPage(Body):
    data: list[OrderView]
    page: int
    limit: int
    total: int


class OpsOrder(OrderView):
    """An order as operators see it: the public view, the approvals so far, whether it needs
    two operators, a movement whose outcome is unknown, and what was recorded as the reason it
    failed or was rejected (a party's refusal as the party said it, or the operator's words)."""

    approvals: tuple[ApprovalFact, ...] = ()
    dual_control: bool = Field(description="the order needs two different operators' approval")
    awaiting_second_approval: bool = Field(
        description="one operator approved; a different one must approve to execute it"
    )
    unresolved: UnresolvedFact | None = Field(
        default=None, description="a movement whose outcome a worker could not learn"
    )
    failure_detail: str | None = Field(
        default=None, description="the recorded reason of a refusal or a rejection, as said"
    )


class OpsOrderPage(Body):
    data: list[OpsOrder]
    page: int
    limit: int
    total: int


class HistoryEntry(Body):
    version: int
    type: str
    occurred_at: str
    actor: dict[str, str | None] = Field(description="kind, id and (operators) name")
    command_id: str
    data: dict[str, object]


class History(Body):
    order_id: UUID
    events: list[HistoryEntry]


class Health(Body):
    status: str = Field(description="ok, or not ready")
    checks: dict[str, str] = Field(
        default_factory=dict, description="each check: ok, or failing and why"
    )
    lags: dict[str, int | None] = Field(
        default_factory=dict,
        description="relay and projector: events behind the store; each consumer group: "
        "messages behind its topic (null: could not be measured)",
    )
