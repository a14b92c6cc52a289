"""What the page's forms do: each one the same `Tasse` call as an API route, then back to a page.

The forms work without the script: a post, then a redirect (303) to the page that shows
the result, with a one-line note. A refused action (no token, a run that already ended, a
bad `NAME=value` line) is that note, never an error page.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from tasse.errors import TasseError
from tasse.http.pages.routes import RunId, SessionDep, TaskName, TasseDep
from tasse.http.pages.session import flash, same_site, sign_in, sign_out
from tasse.http.pages.templating import render
from tasse.models import RunRequest

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

Form = dict[str, str]


async def _form(request: Request) -> Form:
    # Three short fields: urlencoded is all the page sends, and parse_qs reads it.
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[-1] for key, values in fields.items()}


FormDep = Annotated[Form, Depends(_form)]


def _back(to: str, note: str) -> RedirectResponse:
    response = RedirectResponse(to, status_code=303)
    flash(response, note)
    return response


async def _act(
    request: Request,
    session: SessionDep,
    form: Form,
    back: str,
    action: Callable[[], Awaitable[tuple[str, str]]],
) -> Response:
    """Run an action the form asked for, if it may: then to its page, with a note."""
    if not same_site(request, form.get("csrf", "")):
        return _back(back, "That form was stale or came from another site: nothing was done.")
    if not session.may_act:
        return RedirectResponse(f"/ui/login?next={quote(back)}", status_code=303)
    try:
        to, note = await action()
    except (TasseError, ValidationError, ValueError) as error:
        return _back(back, f"Not done: {error}")
    return _back(to, note)


def _pairs(text: str, field: str) -> dict[str, str]:
    pairs = {}
    for line in filter(None, (line.strip() for line in text.splitlines())):
        name, equals, value = line.partition("=")
        if not equals:
            raise ValueError(f"{field}: {line!r} is not NAME=value")
        pairs[name.strip()] = value
    return pairs


def run_request(form: Form) -> RunRequest:
    """The run-now form as the API's request body."""
    return RunRequest(
        args=[line for line in form.get("args", "").splitlines() if line.strip()],
        params=_pairs(form.get("params", ""), "parameters"),
        env=_pairs(form.get("env", ""), "environment"),
    )


@router.post("/ui/tasks/{name}/run")
async def run_now(
    name: TaskName, request: Request, tasse: TasseDep, session: SessionDep, form: FormDep
) -> Response:
    """Run the task now with the form's args, params and env (`POST /tasks/{name}/run`)."""

    async def action() -> tuple[str, str]:
        run = await tasse.request_run(name, run_request(form))
        return f"/runs/{run.id}", f"Started run {run.id} of {name}."

    return await _act(request, session, form, f"/tasks/{name}", action)


@router.post("/ui/tasks/{name}/pause")
async def pause(
    name: TaskName, request: Request, tasse: TasseDep, session: SessionDep, form: FormDep
) -> Response:
    """Pause the task (`POST /tasks/{name}/pause`)."""

    async def action() -> tuple[str, str]:
        tasse.pause(name)
        return f"/tasks/{name}", f"{name} is paused: its fires are recorded as skipped."

    return await _act(request, session, form, f"/tasks/{name}", action)


@router.post("/ui/tasks/{name}/resume")
async def resume(
    name: TaskName, request: Request, tasse: TasseDep, session: SessionDep, form: FormDep
) -> Response:
    """Resume the task (`POST /tasks/{name}/resume`)."""

    async def action() -> tuple[str, str]:
        tasse.resume(name)
        return f"/tasks/{name}", f"{name} is running on its schedule again."

    return await _act(request, session, form, f"/tasks/{name}", action)


@router.post("/ui/tasks/{name}/rebuild")
async def rebuild(
    name: TaskName, request: Request, tasse: TasseDep, session: SessionDep, form: FormDep
) -> Response:
    """Build the task's environment again (`POST /tasks/{name}/env/rebuild`)."""

    async def action() -> tuple[str, str]:
        tasse.rebuild_env(name)
        return f"/tasks/{name}", f"Rebuilding the environment of {name}."

    return await _act(request, session, form, f"/tasks/{name}", action)


@router.post("/ui/runs/{run_id}/cancel")
async def cancel(
    run_id: RunId, request: Request, tasse: TasseDep, session: SessionDep, form: FormDep
) -> Response:
    """Stop the run (`POST /runs/{id}/cancel`)."""

    async def action() -> tuple[str, str]:
        await tasse.cancel_run(run_id)
        return f"/runs/{run_id}", "Cancelled."

    return await _act(request, session, form, f"/runs/{run_id}", action)


@router.post("/ui/runs/{run_id}/again")
async def again(
    run_id: RunId, request: Request, tasse: TasseDep, session: SessionDep, form: FormDep
) -> Response:
    """Run the task again with the run's params (`POST /tasks/{name}/run`)."""

    async def action() -> tuple[str, str]:
        old = await tasse.get_run(run_id)
        run = await tasse.request_run(old.task, RunRequest(args=old.args, params=old.params))
        return f"/runs/{run.id}", f"Started run {run.id} of {old.task} again."

    return await _act(request, session, form, f"/runs/{run_id}", action)


@router.get("/ui/login")
async def login_page(request: Request, tasse: TasseDep, session: SessionDep) -> Response:
    """The sign-in form (only a server with a token has one)."""
    target = _safe_next(request.query_params.get("next", "/"))
    context = {"next": target, "failed": request.query_params.get("failed") == "1"}
    return render(request, tasse, session, "login.html", context)


@router.post("/ui/login")
async def login(request: Request, tasse: TasseDep, form: FormDep) -> Response:
    """Check the token and keep it in an HttpOnly cookie."""
    target = _safe_next(form.get("next", "/"))
    token = tasse.settings.api_token
    given = form.get("token", "")
    if not same_site(request, form.get("csrf", "")):
        return _back("/ui/login?next=" + quote(target), "That form was stale: try again.")
    if token is None or not secrets.compare_digest(
        given.encode(), token.get_secret_value().encode()
    ):
        logger.warning("a sign-in on the dashboard gave a wrong token")
        return RedirectResponse(f"/ui/login?failed=1&next={quote(target)}", status_code=303)
    response = _back(target, "Signed in.")
    sign_in(response, given, secure=request.url.scheme == "https")
    return response


@router.post("/ui/logout")
async def logout(request: Request, form: FormDep) -> Response:
    """Forget the token in this browser."""
    response = _back("/", "Signed out.")
    if same_site(request, form.get("csrf", "")):
        sign_out(response)
    return response


def _safe_next(target: str) -> str:
    # Only a path on this server: "next=https://elsewhere" must not send anyone away.
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.post("/ui/notify/test")
async def notify_test(
    request: Request, tasse: TasseDep, session: SessionDep, form: FormDep
) -> Response:
    """Send a test message to every server target (`POST /notify/test`)."""

    async def action() -> tuple[str, str]:
        sent = tasse.notify_test(None)
        return "/notifications", f"A test is on its way to {len(sent)} target(s)."

    return await _act(request, session, form, "/notifications", action)
