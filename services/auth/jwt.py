"""Bearer JWTs: signature, `exp`, `sub` (the customer id) and the scopes they grant.

Each configured algorithm gets its key once, at construction: the HMAC algorithms (`HS*`) the
shared `jwt_secret`, the others (`RS*`, `PS*`, `ES*`, `EdDSA`) the PEM `jwt_public_key`. A token
is checked only with the key of its own algorithm, so an HMAC token can never be verified against
the public key. An algorithm without its key accepts nothing; with no key at all every token is
refused. `none`, unknown algorithms, short HMAC secrets and weak or private keys are refused at
construction, so a misconfigured gateway fails at start-up rather than at the first request.

Claims: `exp` and `sub` are required; `aud` and `iss` must match when configured, and a token
carrying `aud` is refused when no audience is configured. `nbf` and `iat` are honoured when
present. Scopes come from `scope` (space-separated, or a list) and from `scp` (same); names
other than the `otc-exchanges:*` scopes are ignored. A token granting `otc-exchanges:operate`
to anyone but the platform customer is refused outright, and so is an operator token that does
not name its operator: `operator_id` (a UUID) and `name` (the person's name) are required then.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import jwt
from jwt.algorithms import Algorithm, HMACAlgorithm, get_default_algorithms

from services.auth.principal import (
    KNOWN_SCOPES,
    OperatorIdentity,
    Principal,
    Scope,
    operator_scope_misplaced,
)
from services.settings import Settings

log = logging.getLogger(__name__)

MAX_TOKEN_LENGTH = 8192
_BEARER = "bearer"


class JwtVerifier:
    """Verifies Bearer JWTs against the `jwt_*` settings; `verify` never raises for a bad token."""

    def __init__(self, settings: Settings, *, leeway_seconds: float = 0.0) -> None:
        self._keys = _keys_by_algorithm(
            settings.jwt_algorithms,
            secret=None if settings.jwt_secret is None else settings.jwt_secret.get_secret_value(),
            public_key=settings.jwt_public_key,
        )
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._leeway = leeway_seconds
        required = ["exp", "sub"]
        if self._audience is not None:
            required.append("aud")
        if self._issuer is not None:
            required.append("iss")
        self._required = required

    @property
    def enabled(self) -> bool:
        """Whether any token can be accepted at all (some algorithm has its key)."""
        return bool(self._keys)

    def verify(self, token: str) -> Principal | None:
        """The principal of a valid token; None for any token that fails a check."""
        if not self._keys or len(token) > MAX_TOKEN_LENGTH:
            return None
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            if not isinstance(algorithm, str) or algorithm not in self._keys:
                return None
            claims = jwt.decode(
                token,
                key=self._keys[algorithm],
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": self._required, "enforce_minimum_key_length": True},
            )
        except jwt.PyJWTError as exc:
            log.debug("JWT refused: %s", type(exc).__name__)
            return None
        return _principal(claims)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value; None for any other value."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != _BEARER or not token or " " in token:
        return None
    return token


def _principal(claims: dict[str, Any]) -> Principal | None:
    try:
        customer_id = UUID(claims["sub"])
    except ValueError:
        log.debug("JWT refused: sub is not a UUID")
        return None
    scope, scp = _scopes(claims.get("scope")), _scopes(claims.get("scp"))
    if scope is None or scp is None:
        log.debug("JWT refused: scope is neither a string nor a list of strings")
        return None
    scopes = scope | scp
    if operator_scope_misplaced(customer_id, scopes):
        log.debug("JWT refused: operator scope for a customer other than the platform")
        return None
    operator: OperatorIdentity | None = None
    if Scope.OPERATE in scopes:
        operator = _operator(claims)
        if operator is None:
            log.debug("JWT refused: an operator token without operator_id and name")
            return None
    return Principal(
        customer_id=customer_id,
        scopes=scopes & KNOWN_SCOPES,
        subject=str(customer_id),
        via="jwt",
        operator=operator,
    )


def _operator(claims: dict[str, Any]) -> OperatorIdentity | None:
    operator_id, name = claims.get("operator_id"), claims.get("name")
    if not isinstance(operator_id, str) or not isinstance(name, str) or not name.strip():
        return None
    try:
        return OperatorIdentity(UUID(operator_id), name.strip()[:200])
    except ValueError:
        return None


def _scopes(claim: object) -> frozenset[str] | None:
    if claim is None:
        return frozenset()
    if isinstance(claim, str):
        return frozenset(claim.split())
    if isinstance(claim, list) and all(isinstance(scope, str) for scope in claim):
        return frozenset(claim)
    return None


def _keys_by_algorithm(
    algorithms: list[str], *, secret: str | None, public_key: str | None
) -> dict[str, Any]:
    supported = get_default_algorithms()
    keys: dict[str, Any] = {}
    for name in algorithms:
        if name.lower() == "none" or name not in supported:
            raise ValueError(f"jwt_algorithms: {name!r} is not an accepted JWT algorithm")
        algorithm = supported[name]
        material = secret if isinstance(algorithm, HMACAlgorithm) else public_key
        if material is not None:
            keys[name] = _prepared_key(name, algorithm, material)
    return keys


def _prepared_key(name: str, algorithm: Algorithm, material: str) -> Any:  # noqa: ANN401 - a key object of the algorithm's own type
    try:
        key = algorithm.prepare_key(material)
    except (jwt.InvalidKeyError, ValueError, TypeError) as exc:
        raise ValueError(f"the key configured for {name} is not usable: {exc}") from None
    if hasattr(key, "private_bytes"):
        raise ValueError("jwt_public_key holds a private key: configure the public key only")
    weakness = algorithm.check_key_length(key)
    if weakness is not None:
        raise ValueError(f"the key configured for {name} is too weak: {weakness}")
    return key
