"""HTTP routes: thin translations from requests to `Tasse` calls."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Body,
    Depends,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
)
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from tasse.errors import TaskConfigError
from tasse.http.failures import guarded
from tasse.http.proxy import from_log_home
from tasse.http.text import TEXT_HEADERS, TEXT_TYPE, as_text, raw_headers
from tasse.metrics.metrics import CONTENT_TYPE
from tasse.models import (
    Counts,
    EnvInfo,
    PauseRequest,
    Run,
    RunRequest,
    RunStatus,
    TaskInfo,
    TaskSource,
    TaskState,
)
from tasse.notify.views import public
from tasse.service import Tasse
from tasse.store.outbox import NoticeStatus
from tasse.store.windows import RunWindow
from tasse.tasks.catalog import API_BODY, validate
from tasse.tasks.definitions import TaskDefinition
from tasse.tasks.listing import Sort, TaskQuery
from tasse.tasks.registry import RescanReport
from tasse.values import TASK_NAME_PATTERN


async def _tasse(request: Request) -> Tasse:
    tasse: Tasse = request.app.state.tasse
    return tasse


TasseDep = Annotated[Tasse, Depends(_tasse)]


async def _authorized(
    tasse: TasseDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    """Mutating routes need `Authorization: Bearer <token>` when a token is set."""
    token = tasse.settings.api_token
    if token is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    expected = token.get_secret_value().encode()
    # compare_digest: how long the check takes says nothing about the token.
    if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), expected):
        raise HTTPException(
            status_code=401,
            detail="this route needs the header Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )


#: added to every route that changes something
Authorized = [Depends(_authorized)]
TaskName = Annotated[str, Path(pattern=TASK_NAME_PATTERN, description="the task's folder name")]
RunId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,64}$")]

#: seconds a relayed log that is not followed may stay quiet before it is cut off
RELAY_QUIET = 30.0

router = APIRouter()


@router.get("/health")
async def health(tasse: TasseDep) -> JSONResponse:
    """Liveness and readiness: 200 while the store takes writes, 503 (with why) otherwise."""
    state = tasse.health()
    return JSONResponse(
        jsonable_encoder(state), status_code=200 if state["status"] == "ok" else 503
    )


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(tasse: TasseDep) -> Response:
    """Prometheus metrics in the text format; open, like every read (docs/metrics.md)."""
    return Response(await tasse.scrape_metrics(), media_type=CONTENT_TYPE)


@router.get("/tasks")
async def list_tasks(
    tasse: TasseDep,
    request: Request,
    response: Response,
    q: Annotated[str, Query(max_length=200, description="part of the name or description")] = "",
    status: Annotated[list[TaskState] | None, Query(description="repeatable")] = None,
    source: Annotated[list[TaskSource] | None, Query(description="repeatable")] = None,
    sort: Sort = "name",
    limit: Annotated[int | None, Query(ge=1, le=1000, description="default: all")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[TaskInfo]:
    """Tasks with their schedules, next and last run, error and state; every one by default.

    `X-Total-Count` says how many pass the filters; `Link: <…>; rel="next"` is the next page.
    """
    query = TaskQuery(q, frozenset(status or ()), frozenset(source or ()), sort, limit, offset)
    tasks, total = tasse.find_tasks(query)
    response.headers["X-Total-Count"] = str(total)
    if limit is not None and offset + limit < total:
        following = request.url.include_query_params(offset=offset + limit)
        response.headers["Link"] = f'<{following}>; rel="next"'
    return tasks


@router.get("/tasks/{name}")
async def get_task(name: TaskName, tasse: TasseDep) -> TaskInfo:
    """One task."""
    return tasse.get_task(name)


@router.post("/tasks", status_code=201, dependencies=Authorized)
async def create_task(definition: TaskDefinition, tasse: TasseDep) -> TaskInfo:
    """Define a task: the keys of task.yaml plus `command`, `python_ref` or `task`."""
    await tasse.catalog.create(definition)
    return tasse.get_task(definition.name)


@router.put("/tasks/{name}", dependencies=Authorized)
async def replace_task(
    name: TaskName, body: Annotated[dict[str, Any], Body()], tasse: TasseDep, response: Response
) -> TaskInfo:
    """Define or replace a task defined through the API (201 when it is new)."""
    if body.setdefault("name", name) != name:
        raise TaskConfigError(name, API_BODY, f"names another task ({body['name']!r})", "name")
    if await tasse.catalog.put(validate(body, name)):
        response.status_code = 201
    return tasse.get_task(name)


@router.patch("/tasks/{name}", dependencies=Authorized)
async def patch_task(
    name: TaskName, changes: Annotated[dict[str, Any], Body()], tasse: TasseDep
) -> TaskInfo:
    """Change some keys of a task defined through the API; `null` removes a key."""
    await tasse.catalog.patch(name, changes)
    return tasse.get_task(name)


@router.delete("/tasks/{name}", status_code=204, dependencies=Authorized)
async def delete_task(name: TaskName, tasse: TasseDep) -> None:
    """Delete a task defined through the API (runs in progress finish)."""
    await tasse.catalog.delete(name)


@router.post("/tasks/{name}/run", status_code=202, dependencies=Authorized)
async def run_task(
    name: TaskName, tasse: TasseDep, body: Annotated[RunRequest | None, Body()] = None
) -> Run:
    """Run the task now; `args` are appended, `params` become TASSE_PARAM_<NAME>."""
    return await tasse.request_run(name, body or RunRequest())


@router.post("/tasks/{name}/env/rebuild", status_code=202, dependencies=Authorized)
async def rebuild_env(name: TaskName, tasse: TasseDep) -> EnvInfo:
    """Build the task's Python environment again from scratch (in the background)."""
    return tasse.rebuild_env(name)


@router.get("/tasks/{name}/next")
async def next_fires(
    name: TaskName, tasse: TasseDep, count: Annotated[int, Query(ge=1, le=1000)] = 10
) -> list[datetime]:
    """The task's next fire times (at most `next_fires_budget` schedules x count, else 422)."""
    return await tasse.next_fires(name, count)


@router.get("/tasks/{name}/runs")
async def task_runs(
    name: TaskName,
    tasse: TasseDep,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    status: RunStatus | None = None,
    before: Annotated[
        str | None,
        Query(pattern=r"^[A-Za-z0-9-]{1,64}$", description="only runs older than this run id"),
    ] = None,
) -> list[Run]:
    """The task's run history, newest first; page on with `before` = the last id seen.

    `X-Tasse-Pending-Records` says how many records (of all tasks) wait for the store;
    the task's among them are listed.
    """
    runs = await tasse.list_runs(name, limit, status.value if status else None, before)
    response.headers["X-Tasse-Pending-Records"] = str(tasse.records.pending_count)
    return runs


@router.get("/runs/{run_id}")
async def get_run(run_id: RunId, tasse: TasseDep) -> Run:
    """One run."""
    return await tasse.get_run(run_id)


@router.get(
    "/runs/{run_id}/log",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}, "application/octet-stream": {}}}},
)
async def run_log(
    run_id: RunId, request: Request, tasse: TasseDep, follow: bool = False, raw: bool = False
) -> StreamingResponse:
    """The run's output as UTF-8 text (invalid bytes as U+FFFD), streamed from its file;
    with `follow=true` until the run ends; with `raw=true` the bytes as written, to save.
    In a cluster, the node that ran it answers (relayed)."""
    # A followed log is quiet while the run is: no limit then (the relay holds no thread).
    relayed = await from_log_home(request, tasse, run_id, None if follow else RELAY_QUIET)
    if relayed is not None:
        return relayed
    chunks = await tasse.follow_log(run_id, live=follow)
    if raw:
        raw_chunks = guarded(chunks, f"the log of run {run_id}")
        headers = raw_headers(f"{run_id}.log")
        return StreamingResponse(raw_chunks, media_type="application/octet-stream", headers=headers)
    text = guarded(as_text(chunks), f"the log of run {run_id}")
    return StreamingResponse(text, media_type=TEXT_TYPE, headers=TEXT_HEADERS)


@router.post("/runs/{run_id}/cancel", dependencies=Authorized)
async def cancel_run(run_id: RunId, tasse: TasseDep) -> Run:
    """Stop a live run: SIGTERM to its process group, SIGKILL after the grace time."""
    return await tasse.cancel_run(run_id)


@router.post("/rescan", dependencies=Authorized)
async def rescan(tasse: TasseDep) -> RescanReport:
    """Rescan every task folder now."""
    return await tasse.rescan()


@router.post("/tasks/{name}/pause", dependencies=Authorized)
async def pause_task(
    name: TaskName, tasse: TasseDep, body: Annotated[PauseRequest | None, Body()] = None
) -> TaskInfo:
    """Pause the task: each fire is recorded as skipped (`paused`); a manual run still runs."""
    return tasse.pause(name, body.reason if body else None)


@router.post("/tasks/{name}/resume", dependencies=Authorized)
async def resume_task(name: TaskName, tasse: TasseDep) -> TaskInfo:
    """Resume a paused task: its next fires run; those while it was paused stay skipped."""
    return tasse.resume(name)


@router.get("/counts")
async def counts(tasse: TasseDep, response: Response, since: datetime | None = None) -> Counts:
    """Tasks by state and by source; runs from `since` (default: 24 hours ago) to now by status.

    Runs are counted as the store has them: `X-Tasse-Pending-Records` says how many wait.
    """
    found = await tasse.counts(_utc(since) if since else datetime.now(UTC) - timedelta(days=1))
    response.headers["X-Tasse-Pending-Records"] = str(tasse.records.pending_count)
    return found


@router.get("/runs")
async def list_runs(
    tasse: TasseDep,
    response: Response,
    since: datetime | None = None,
    until: datetime | None = None,
    task: Annotated[list[str] | None, Query(max_length=1000, description="repeatable")] = None,
    status: Annotated[list[RunStatus] | None, Query(description="repeatable")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    before: Annotated[
        str | None,
        Query(pattern=r"^[A-Za-z0-9-]{1,64}$", description="only runs older than this run id"),
    ] = None,
) -> list[Run]:
    """Runs of every task, newest first: those whose time (start to end, or now while live)
    overlaps `since`…`until`; page on with `before` = the last id seen.

    Times without a zone are UTC. `X-Tasse-Pending-Records` as for a task's runs.
    """
    window = RunWindow(
        _utc(since) if since else None,
        _utc(until) if until else None,
        frozenset(task or ()),
        frozenset(status or ()),
        before,
        limit,
    )
    if window.since and window.until and window.since > window.until:
        raise HTTPException(status_code=422, detail="since is later than until")
    runs = await tasse.runs(window)
    response.headers["X-Tasse-Pending-Records"] = str(tasse.records.pending_count)
    return runs


class NotifyTest(BaseModel):
    """The optional body of `POST /notify/test`."""

    model_config = ConfigDict(extra="forbid")

    #: a target URL, a tag or a target's key; none: every server target
    target: str | None = Field(None, max_length=2000)


@router.get("/notifications")
async def notifications(
    tasse: TasseDep,
    request: Request,
    response: Response,
    task: Annotated[str | None, Query(pattern=TASK_NAME_PATTERN)] = None,
    status: Annotated[NoticeStatus | None, Query()] = None,
    before: Annotated[datetime | None, Query(description="only those made before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Notifications newest first, each with its status (pending, held, sent, failed,
    digested), attempts and last error; targets masked. Page on with `before` = the last
    `created_at` seen (`Link: <…>; rel="next"`)."""
    found = await tasse.notifications(
        task, status.value if status else None, _utc(before) if before else None, limit
    )
    if len(found) == limit:
        following = request.url.include_query_params(before=found[-1].created_at.isoformat())
        response.headers["Link"] = f'<{following}>; rel="next"'
    return [public(notice) for notice in found]


@router.post("/notify/test", status_code=202, dependencies=Authorized)
async def notify_test(
    tasse: TasseDep, body: Annotated[NotifyTest | None, Body()] = None
) -> list[dict[str, Any]]:
    """Send a test message to a target (a URL, a tag or a key; every server target by
    default); the answer lists the queued notifications, `GET /notifications` how they fare."""
    return [public(notice) for notice in tasse.notify_test(body.target if body else None)]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
