"""Signing in to the console with the admin token, and signing out (``session.py`` keeps it)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template

from inlet.tokens import matches
from registry.console import session
from registry.console.session import PUBLIC, SIGN_IN_PATH, local_next


class SignInForm(msgspec.Struct, frozen=True):
    token: str = ""
    next: str = ""


Form = Annotated[SignInForm, Body(media_type=RequestEncodingType.URL_ENCODED)]


def _sign_in_page(next_path: str, error: str | None = None, status_code: int = 200) -> Template:
    return Template(
        template_name="sign_in.html",
        context={"next": local_next(next_path), "error": error},
        status_code=status_code,
    )


class AuthPages(Controller):
    path = "/console"
    opt = {PUBLIC: True}  # noqa: RUF012 (Litestar's declaration)

    @get("/sign-in")
    async def sign_in_page(self, next: FromQuery[str] = "") -> Template:  # noqa: A002 - the parameter's name
        return _sign_in_page(next)

    @post("/sign-in", status_code=303)
    async def sign_in(self, request: Request[Any, Any, Any], data: Form) -> Redirect | Template:
        # The same check as the API's Bearer/Basic (registry/auth.py); the token is not shown back.
        if not matches(data.token.strip(), request.app.state.admin_token_hash):
            return _sign_in_page(data.next, "That is not the admin token.", status_code=401)
        session.begin(request)
        return Redirect(local_next(data.next), status_code=303)

    @post("/sign-out", status_code=303)
    async def sign_out(self, request: Request[Any, Any, Any]) -> Redirect:
        session.end(request)
        return Redirect(SIGN_IN_PATH, status_code=303)
