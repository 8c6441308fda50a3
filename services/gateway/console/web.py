"""What every console page shares: the templates, the headers, a page with the operator's name
and CSRF token, the redirect, the urlencoded form, the cookies, and the two refusals that are
not pages of their own (services/gateway/console/routes.py answers them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs
from uuid import UUID

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.auth.principal import Principal
from services.gateway.console.sessions import Session

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
PATH = "/console"
MAX_FORM_BYTES = 16 * 1024
CSRF_REFUSED = "CSRF_TOKEN_INVALID"
"""The code a POST without this session's CSRF token is refused with (403)."""
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class SignInRequiredError(Exception):
    """No session, an expired one, or a key no longer valid: back to the sign-in page."""


class FormRefusedError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Signed:
    token: str
    session: Session
    principal: Principal


def page(
    request: Request,
    template: str,
    *,
    status: int = 200,
    signed: Signed | None = None,
    **context: object,
) -> HTMLResponse:
    """A page of the console, with the operator's name and CSRF token when signed in."""
    if signed is not None:
        context |= {"operator": signed.session.operator_name, "csrf": signed.session.csrf}
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status)
    response.headers.update(HEADERS)
    return response


def missing(request: Request, signed: Signed, order_id: UUID) -> HTMLResponse:
    return page(
        request,
        "missing.html",
        status=404,
        signed=signed,
        title="Order not found",
        order_id=order_id,
    )


def see_other(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.headers.update(HEADERS)
    return response


async def form_of(request: Request) -> dict[str, str]:
    """A urlencoded form's fields (the last value of each)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise FormRefusedError(413, "PAYLOAD_TOO_LARGE", "the form is too large")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20)
    return {name: values[-1] for name, values in fields.items()}


def set_cookie(response: Response, request: Request, name: str, value: str, seconds: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=seconds,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
