"""The resource directory the engine and the gateway read through, and the rules for writing it.

Treasury resources belong to one platform customer with a fixed id. Full IBANs are accepted on
input only: they are validated here and reduced to a masked form and the last four characters,
which is all that is ever stored or shown.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.resources import FiatAccount, Wallet

PLATFORM_CUSTOMER_ID = uuid5(NAMESPACE_URL, "urn:otc:customer:platform")
PLATFORM_CUSTOMER_NAME = "Platform treasury"
TREASURY_CURRENCY = "EUR"


class Network(StrEnum):
    ETHEREUM = "ethereum"
    POLYGON = "polygon"
    SOLANA = "solana"


class ResourceError(Exception):
    """A write the directory refused. The message is safe to show: it never holds an IBAN."""


class InvalidResourceError(ResourceError):
    pass


class ResourceNotFoundError(ResourceError):
    pass


class ResourceConflictError(ResourceError):
    pass


@dataclass(frozen=True)
class Customer:
    id: UUID
    name: str
    created_at: datetime


@dataclass(frozen=True)
class AccountRecord:
    """An account as operators see it: the domain view plus the masked IBAN."""

    account: FiatAccount
    iban_masked: str


@dataclass(frozen=True)
class MaskedIban:
    masked: str
    last4: str


class ResourceDirectory(ABC):
    """Read access to accounts and wallets. Another customer's resource is returned like any
    other: ownership is checked by the caller against `customer_id`."""

    @abstractmethod
    async def accounts(self, ids: Collection[UUID]) -> dict[UUID, FiatAccount]:
        """The accounts with these ids; unknown ids are absent from the result."""

    @abstractmethod
    async def wallets(self, ids: Collection[UUID]) -> dict[UUID, Wallet]:
        """The wallets with these ids; unknown ids are absent from the result."""

    @abstractmethod
    async def accounts_of(self, customer_id: UUID) -> list[FiatAccount]:
        """All the customer's accounts, eligible or not, oldest first."""

    @abstractmethod
    async def wallets_of(self, customer_id: UUID) -> list[Wallet]:
        """All the customer's wallets, eligible or not, oldest first."""

    @abstractmethod
    async def treasury_wallet(self, network: str) -> Wallet | None: ...

    @abstractmethod
    async def treasury_account(self) -> FiatAccount | None:
        """The platform's EUR treasury account, active or not."""


_IBAN_SHAPE = re.compile(r"[A-Z]{2}(?!0[01]|99)[0-9]{2}[A-Z0-9]{11,30}")
_IBAN_GROUP = 4
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
_EVM_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_SOLANA_ADDRESS = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,44}")
_ADDRESS_SHAPES = {
    Network.ETHEREUM: _EVM_ADDRESS,
    Network.POLYGON: _EVM_ADDRESS,
    Network.SOLANA: _SOLANA_ADDRESS,
}
MAX_NAME_LENGTH = 200


def mask_iban(iban: str) -> MaskedIban:
    """Validate a full IBAN (any case, spaces allowed) and keep only what may be stored.

    The shape is a country code, two check digits (02 to 98) and 11 to 30 letters or digits; the
    ISO 7064 mod-97 check must give 1. The masked form shows the first four and the last four
    characters: `DE89 **** **** **** **** 3000`.
    """
    compact = "".join(iban.split()).upper()
    if _IBAN_SHAPE.fullmatch(compact) is None:
        raise InvalidResourceError(
            "iban must be a country code, two check digits and 11 to 30 letters or digits",
        )
    rearranged = compact[_IBAN_GROUP:] + compact[:_IBAN_GROUP]
    if int("".join(str(int(char, 36)) for char in rearranged)) % 97 != 1:
        raise InvalidResourceError("iban check digits do not match (mod 97)")
    hidden_groups = -(-(len(compact) - 2 * _IBAN_GROUP) // _IBAN_GROUP)
    last4 = compact[-_IBAN_GROUP:]
    return MaskedIban(
        f"{compact[:_IBAN_GROUP]} {' '.join(['****'] * hidden_groups)} {last4}", last4
    )


def check_text(value: str, field: str) -> str:
    text = value.strip()
    if not text:
        raise InvalidResourceError(f"{field} must not be empty")
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidResourceError(f"{field} is longer than {MAX_NAME_LENGTH} characters")
    return text


def check_currency(code: str) -> str:
    currency = code.strip().upper()
    if _CURRENCY_CODE.fullmatch(currency) is None:
        raise InvalidResourceError("currency must be a three-letter ISO 4217 code")
    return currency


def check_network(network: str) -> Network:
    try:
        return Network(network)
    except ValueError:
        known = ", ".join(Network)
        raise InvalidResourceError(f"network must be one of {known}") from None


def check_usdc_address(network: Network, address: str) -> str:
    """An address of the network's shape: `0x` and 40 hex digits on EVM chains, 32 to 44 base58
    characters on Solana. The case is kept (EVM checksum casing is not verified)."""
    text = address.strip()
    if _ADDRESS_SHAPES[network].fullmatch(text) is None:
        raise InvalidResourceError(f"usdc address is not a valid {network} address")
    return text
