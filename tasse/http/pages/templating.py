"""The pages' Jinja2 environment: templates, filters, and what every page shows around it."""

from __future__ import annotations

import hashlib
from datetime import datetime
from importlib.resources import files
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, pass_context, select_autoescape
from jinja2.runtime import Context

from tasse.http.pages import formats
from tasse.http.pages.problems import problem_count
from tasse.http.pages.session import FLASH_COOKIE, Session, keep, session_of, take_flash
from tasse.service import Tasse


@pass_context
def _local(context: Context, moment: datetime) -> str:
    return formats.local(moment, context["zone_info"])


_env = Environment(
    loader=PackageLoader("tasse.http.pages", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters |= {
    "ago": formats.ago,
    "until": formats.until,
    "duration": formats.run_duration,
    "filesize": formats.filesize,
    "local": _local,
}


def _asset_version() -> str:
    # Part of the stylesheet's and script's URLs: a new release is never served a stale copy.
    digest = hashlib.sha256()
    for name in ("tasse.css", "tasse.js"):
        digest.update((files("tasse.http.pages") / "static" / name).read_bytes())
    return digest.hexdigest()[:10]


ASSET_VERSION = _asset_version()


def render(
    request: Request,
    tasse: Tasse,
    session: Session,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    """A page: the template with the header's facts (health, problems, sign-in) around it."""
    healthy = tasse.records.state.writable and tasse.lag.worst <= tasse.settings.health_max_lag
    # The full /health answer walks every environment: asked only when something is wrong.
    detail = "the store takes writes, the loop keeps time"
    if not healthy:
        detail = str(tasse.health().get("detail", detail))
    page: dict[str, Any] = {
        "asset_version": ASSET_VERSION,
        "version": request.app.version,
        "zone": tasse.settings.timezone,
        "zone_info": ZoneInfo(tasse.settings.timezone),
        "health_ok": healthy,
        "health_detail": detail,
        "problem_count": problem_count(tasse),
        "csrf": session.csrf,
        "signed_in": session.signed_in,
        "auth_required": session.auth_required,
        "request_path": request.url.path,
        "flash": request.cookies.get(FLASH_COOKIE),
        "cluster_mode": tasse.cluster is not None,
    }
    html = _env.get_template(template).render(page | context)
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Vary"] = "Accept, Cookie"
    response.headers["Cache-Control"] = "no-store"
    take_flash(request, response)
    keep(response, session, secure=request.url.scheme == "https")
    return response


def is_page(request: Request) -> bool:
    """True for a request a page answers (so its errors are pages too)."""
    path = request.url.path
    return path == "/" or path.startswith("/ui/") or path == "/timeline"


def error_page(request: Request, status_code: int, detail: str) -> HTMLResponse:
    """An error as a page: what went wrong, and the way back."""
    tasse: Tasse = request.app.state.tasse
    heading = {404: "Not found", 409: "Not now", 503: "The store is unavailable"}
    return render(
        request,
        tasse,
        session_of(request, tasse.settings),
        "error.html",
        {"heading": heading.get(status_code, "That did not work"), "detail": detail},
        status_code=status_code,
    )
