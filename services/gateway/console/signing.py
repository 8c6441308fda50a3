"""Signing in and out: an operator key exchanged for a session (services/gateway/console/
sessions.py), every page's `SignedIn` dependency, and the CSRF check of every POST."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from domain.errors import ErrorCode
from services.gateway.console.sessions import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    SIGN_IN_SECONDS,
    same,
)
from services.gateway.console.web import (
    CSRF_REFUSED,
    PATH,
    FormRefusedError,
    Signed,
    SignInRequiredError,
    form_of,
    page,
    see_other,
    set_cookie,
)
from services.gateway.ports import GatewayDep

signing = APIRouter(prefix=PATH, include_in_schema=False)


async def signed_in(request: Request, gw: GatewayDep) -> Signed:
    token = request.cookies.get(SESSION_COOKIE)
    session = gw.console.sessions.get(token)
    if token is None or session is None:
        raise SignInRequiredError
    principal = await gw.auth.api_key(session.key)
    if principal is None or not principal.is_operator:
        gw.console.sessions.close(token)
        raise SignInRequiredError
    return Signed(token, session, principal)


SignedIn = Annotated[Signed, Depends(signed_in)]


async def checked_form(request: Request, signed: Signed) -> dict[str, str]:
    form = await form_of(request)
    if not same(form.get("csrf"), signed.session.csrf):
        raise FormRefusedError(
            403,
            CSRF_REFUSED,
            "the form did not carry this session's security token; reload the page and try again",
        )
    return form


@signing.get("")
async def home() -> Response:
    return see_other(f"{PATH}/queue")


@signing.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    token = secrets.token_urlsafe(32)
    response = page(request, "sign_in.html", title="Sign in", sign_in_token=token)
    set_cookie(response, request, SIGN_IN_COOKIE, token, SIGN_IN_SECONDS)
    return response


@signing.post("/sign-in")
async def sign_in(request: Request, gw: GatewayDep) -> Response:
    form = await form_of(request)

    def refused(status: int, message: str) -> Response:
        token = secrets.token_urlsafe(32)
        response = page(
            request,
            "sign_in.html",
            status=status,
            title="Sign in",
            sign_in_token=token,
            error=message,
        )
        set_cookie(response, request, SIGN_IN_COOKIE, token, SIGN_IN_SECONDS)
        return response

    if not same(form.get("csrf"), request.cookies.get(SIGN_IN_COOKIE)):
        return refused(403, f"The sign-in form had expired; try again ({CSRF_REFUSED}).")
    key = form.get("key", "").strip()
    principal = await gw.auth.api_key(key) if key else None
    if principal is None:
        return refused(401, f"That key was not accepted ({ErrorCode.UNAUTHENTICATED}).")
    if not principal.is_operator or principal.operator is None:
        return refused(
            403,
            "That is not an operator's key: customer keys cannot sign in to the console "
            f"({ErrorCode.INSUFFICIENT_SCOPE}).",
        )
    token, _ = gw.console.sessions.open(key, principal.operator.name)
    response = see_other(f"{PATH}/queue")
    set_cookie(response, request, SESSION_COOKIE, token, int(gw.console.sessions.ttl_seconds))
    response.delete_cookie(SIGN_IN_COOKIE, path=PATH, httponly=True, samesite="strict")
    return response


@signing.post("/sign-out")
async def sign_out(request: Request, gw: GatewayDep, signed: SignedIn) -> Response:
    await checked_form(request, signed)
    gw.console.sessions.close(signed.token)
    response = see_other(f"{PATH}/sign-in")
    response.delete_cookie(SESSION_COOKIE, path=PATH, httponly=True, samesite="strict")
    return response
