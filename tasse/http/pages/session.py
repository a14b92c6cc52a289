"""Who may act from the page: the API token in an HttpOnly cookie, and forms that only this
site can send.

Reading is as open as the API's reading. An action (run, cancel, pause, rebuild) needs the
token when one is set; the browser keeps it in a `SameSite=Strict` cookie the scripts cannot
read, so it is entered once. Every form also carries a random value that must equal the
`tasse_csrf` cookie's (a cross-site page can neither read that cookie nor make the browser
send it), and a request whose Origin is another site is refused outright: a server without
a token is then still safe from a page elsewhere posting to it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request, Response

from tasse.settings import Settings

TOKEN_COOKIE = "tasse_token"
CSRF_COOKIE = "tasse_csrf"
FLASH_COOKIE = "tasse_flash"


@dataclass(frozen=True)
class Session:
    """What a page request carries: its CSRF value and whether it is signed in."""

    csrf: str
    signed_in: bool
    auth_required: bool
    #: a new CSRF value the answer must set as a cookie
    new_csrf: bool

    @property
    def may_act(self) -> bool:
        """True when actions need no token or the request has it."""
        return self.signed_in or not self.auth_required


def session_of(request: Request, settings: Settings) -> Session:
    """The request's session (a CSRF value is made on the first visit)."""
    csrf = request.cookies.get(CSRF_COOKIE, "")
    new = len(csrf) < 32
    if new:
        csrf = secrets.token_urlsafe(24)
    token = settings.api_token
    given = request.cookies.get(TOKEN_COOKIE, "")
    signed_in = token is not None and secrets.compare_digest(
        given.encode(), token.get_secret_value().encode()
    )
    return Session(csrf, signed_in, token is not None, new)


def keep(response: Response, session: Session, secure: bool) -> None:
    """Set the cookies a page answer must carry."""
    if session.new_csrf:
        response.set_cookie(
            CSRF_COOKIE, session.csrf, httponly=True, samesite="strict", secure=secure
        )


def same_site(request: Request, form_csrf: str) -> bool:
    """True when a form post came from one of this server's own pages."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie.encode(), form_csrf.encode()):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None  # "null": a sandboxed or privacy-stripped page, not ours
    return urlsplit(origin).netloc == request.headers.get("host", "")


def sign_in(response: Response, token: str, secure: bool) -> None:
    """Keep the token for this browser (until it is closed)."""
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", secure=secure)


def sign_out(response: Response) -> None:
    """Forget the token."""
    response.delete_cookie(TOKEN_COOKIE, httponly=True, samesite="strict")


def flash(response: Response, message: str) -> None:
    """A one-line note shown on the next page (what an action did, or why it could not)."""
    response.set_cookie(FLASH_COOKIE, message[:300], httponly=True, samesite="strict", max_age=60)


def take_flash(request: Request, response: Response) -> str | None:
    """The note left by the last action; the answer clears it, as it is shown now."""
    message = request.cookies.get(FLASH_COOKIE)
    if message:
        response.delete_cookie(FLASH_COOKIE, httponly=True, samesite="strict")
    return message or None
