"""Who is calling: an `x-api-key` or a Bearer JWT (401 without valid credentials), and the scope
a route needs (403 INSUFFICIENT_SCOPE). A route states its caller as `Reader`, `Writer` or
`Operator`: FastAPI's security scopes, so the OpenAPI document names each route's scope."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import (
    APIKeyHeader,
    HTTPAuthorizationCredentials,
    HTTPBearer,
    SecurityScopes,
)

from domain.errors import ErrorCode
from services.auth.jwt import JwtVerifier
from services.auth.keys import ApiKeyVerifier
from services.auth.principal import Principal, Scope
from services.gateway.ports import GatewayDep
from services.gateway.problems import ApiError

SCOPES = (
    f"Each route names the scope it needs: {Scope.READ} (the customer's reads), "
    f"{Scope.WRITE} (the customer's changes), {Scope.OPERATE} (the operators' routes)."
)
API_KEY = APIKeyHeader(
    name="x-api-key",
    scheme_name="apiKey",
    auto_error=False,
    description=f"an API key, bound to one customer (or operator) and its scopes. {SCOPES}",
)
BEARER = HTTPBearer(
    scheme_name="bearerJwt",
    auto_error=False,
    bearerFormat="JWT",
    description=f"a session JWT: `sub` the customer id, `scope` its scopes. {SCOPES}",
)


class Credentials:
    """The gateway's `Authenticator`: API keys from a verifier (the key store behind its cache,
    `services.auth.key_cache`), JWTs from the verifier (locally: a signature and claims, no
    database, so nothing to cache)."""

    def __init__(self, keys: ApiKeyVerifier, jwt: JwtVerifier) -> None:
        self.keys = keys
        self.jwt = jwt

    async def api_key(self, key: str) -> Principal | None:
        return await self.keys.verify(key)

    def bearer(self, token: str) -> Principal | None:
        return self.jwt.verify(token)


async def authenticate(
    gw: GatewayDep,
    api_key: Annotated[str | None, Security(API_KEY)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
) -> Principal:
    principal: Principal | None = None
    if api_key:
        principal = await gw.auth.api_key(api_key)
    elif bearer is not None:
        principal = gw.auth.bearer(bearer.credentials)
    if principal is None:
        raise ApiError(
            ErrorCode.UNAUTHENTICATED,
            "valid credentials are required: an x-api-key header or a Bearer JWT",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


async def authorized(
    needed: SecurityScopes, principal: Annotated[Principal, Depends(authenticate)]
) -> Principal:
    for required in needed.scopes:
        if not principal.has(required):
            raise ApiError(ErrorCode.INSUFFICIENT_SCOPE, f"this call needs the scope {required}")
    return principal


Reader = Annotated[Principal, Security(authorized, scopes=[Scope.READ])]
Writer = Annotated[Principal, Security(authorized, scopes=[Scope.WRITE])]
Operator = Annotated[Principal, Security(authorized, scopes=[Scope.OPERATE])]
