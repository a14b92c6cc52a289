"""The pages a browser reads: overview, task, run, timeline, problems.

A page and the API share one address where they show the same thing (`/tasks/{name}`,
`/runs/{id}`, `/problems`): `Negotiation` hands a browser's request to the page here, under
`/ui`, and anything else to the API. Every page reads through `Tasse`, as the API does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, get_args
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse

from tasse.errors import TaskNotFoundError
from tasse.http.pages import views
from tasse.http.pages.charts import duration_chart, outcome_calendar, timeline
from tasse.http.pages.problems import Problem, problems_of
from tasse.http.pages.session import Session, session_of
from tasse.http.pages.templating import render
from tasse.http.text import TEXT_HEADERS
from tasse.models import RunStatus, TaskSource, TaskState
from tasse.notify.views import public
from tasse.schedule.wording import describe_all
from tasse.service import Tasse
from tasse.tasks.listing import Sort, TaskQuery
from tasse.values import TASK_NAME_PATTERN

RUNS_PER_PAGE = 25
TASKS_PER_PAGE = 50
SORTS = (
    ("name", "name, A to Z"),
    ("-name", "name, Z to A"),
    ("state", "state"),
    ("next", "next fire"),
    ("last", "last run"),
)
TIMELINE_SPANS = (1, 3, 6, 12, 24)

router = APIRouter(include_in_schema=False)


async def _tasse(request: Request) -> Tasse:
    tasse: Tasse = request.app.state.tasse
    return tasse


async def _session(request: Request, tasse: Annotated[Tasse, Depends(_tasse)]) -> Session:
    return session_of(request, tasse.settings)


TasseDep = Annotated[Tasse, Depends(_tasse)]
SessionDep = Annotated[Session, Depends(_session)]
TaskName = Annotated[str, Path(pattern=TASK_NAME_PATTERN)]
RunId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,64}$")]
Cursor = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9-]{1,64}$")]


@router.get("/ui/tasks/{name}", response_class=HTMLResponse)
async def task_page(
    name: TaskName,
    request: Request,
    tasse: TasseDep,
    session: SessionDep,
    status: RunStatus | None = None,
    before: Cursor = None,
) -> HTMLResponse:
    """One task: schedule, next fires, policies, environment, charts, runs, run-now form."""
    info = tasse.get_task(name)
    zone = ZoneInfo(tasse.settings.timezone)
    fires, fires_note = await views.next_fires(tasse, name)
    runs, older = await views.task_runs(
        tasse, name, status.value if status else None, before, RUNS_PER_PAGE
    )
    recent, days = await views.chart_runs(tasse, name)
    older_url = (
        f"?before={older}" + (f"&status={status.value}" if status else "") if older else None
    )
    return render(
        request,
        tasse,
        session,
        "task.html",
        {
            "section": "overview",
            "live_scope": f"task:{name}",
            "info": info,
            "state": info.state,
            "schedule": describe_all(info.schedules),
            "next_fires": fires,
            "next_fires_note": fires_note,
            "runs": runs,
            "run_status": status.value if status else None,
            "run_statuses": [s.value for s in RunStatus],
            "before": before,
            "older_url": older_url and older_url + "#h-runs",
            "notices": [public(n) for n in await tasse.notifications(name, None, None, 5)],
            "chart_runs": len(recent),
            "duration_chart": duration_chart(recent, zone=zone),
            "calendar": outcome_calendar(days, today=datetime.now(zone).date(), zone=zone),
            "calendar_note": "" if len(days) < views.CALENDAR_RUNS else "the newest runs only",
            "definition": views.definition_text(info),
        },
    )


@router.get("/ui/runs/{run_id}", response_class=HTMLResponse)
async def run_page(
    run_id: RunId, request: Request, tasse: TasseDep, session: SessionDep
) -> HTMLResponse:
    """One run: its facts, and its log (live while it runs)."""
    run = await tasse.get_run(run_id)
    tail = views.log_tail(tasse.layout.run_log(run.task, run.id))
    if not tail.size and tasse.log_tails is not None:  # a worker's run: its log is there
        tail = await views.log_tail_elsewhere(tasse.log_tails, run.id)
    try:
        task_title = tasse.get_task(run.task).title
    except TaskNotFoundError:  # the run of a task removed since
        task_title = None
    return render(
        request,
        tasse,
        session,
        "run.html",
        {
            "section": "overview",
            "live_scope": f"run:{run.id}",
            "run": run,
            "task_title": task_title,
            "params": run.params,
            "log_text": tail.text,
            "log_size": tail.size,
            "log_shown": tail.shown,
            "log_truncated": tail.truncated,
            "log_offset": tail.size,
            "log_problem": tail.problem,
        },
    )


@router.get("/timeline", response_class=HTMLResponse)
async def timeline_page(
    request: Request,
    tasse: TasseDep,
    session: SessionDep,
    hours: Annotated[int, Query(ge=1, le=24 * 7)] = 6,
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """The runs of every task over the last hours, as bars on one time axis, 50 tasks a page."""
    until = datetime.now(UTC)
    since = until - timedelta(hours=hours)
    # A row per task: 10,000 rows are no picture, so the tasks are paged as in the overview.
    shown, total = tasse.find_tasks(
        TaskQuery(q=q.strip(), limit=TASKS_PER_PAGE, offset=(page - 1) * TASKS_PER_PAGE)
    )
    names = frozenset(info.name for info in shown)
    runs, truncated = await views.window(tasse, since, until, names)
    zone = ZoneInfo(tasse.settings.timezone)
    return render(
        request,
        tasse,
        session,
        "timeline.html",
        {
            "section": "timeline",
            "live_scope": "page",
            "span": hours,
            "spans": TIMELINE_SPANS,
            "since": since,
            "until": until,
            "runs_count": len(runs),
            "truncated": truncated,
            "q": q,
            "page": views.Pager.of(request, page, TASKS_PER_PAGE, total),
            "chart": timeline(
                runs,
                since=since,
                until=until,
                zone=zone,
                titles={info.name: info.title for info in shown if info.title},
            ),
        },
    )


@router.get("/ui/problems", response_class=HTMLResponse)
async def problems_page(request: Request, tasse: TasseDep, session: SessionDep) -> HTMLResponse:
    """Every broken folder, bad name, seed error, failed environment and pending record."""
    return render(
        request,
        tasse,
        session,
        "problems.html",
        {"section": "problems", "live_scope": "page", "problems": problems_of(tasse)},
    )


@router.get("/ui/notifications", response_class=HTMLResponse)
async def notifications_page(
    request: Request,
    tasse: TasseDep,
    session: SessionDep,
    task: Annotated[str | None, Query(pattern=TASK_NAME_PATTERN)] = None,
    before: datetime | None = None,
) -> HTMLResponse:
    """The targets, a test button, and the newest notifications with how each stands."""
    notices = [public(n) for n in await tasse.notifications(task, None, before, RUNS_PER_PAGE)]
    older = None
    if len(notices) == RUNS_PER_PAGE:
        query = {"before": notices[-1]["created_at"].isoformat()} | ({"task": task} if task else {})
        older = "?" + urlencode(query)
    targets = [
        {"shown": tasse.notifier.shown_of(t), "tags": sorted(t.tags)}
        for t in tasse.notifier.targets
    ]
    return render(
        request,
        tasse,
        session,
        "notifications.html",
        {
            "section": "notifications",
            "live_scope": "page",
            "notices": notices,
            "targets": targets,
            "older_url": older,
        },
    )


@router.get("/problems", include_in_schema=True, tags=["dashboard"])
async def problems(tasse: TasseDep) -> list[Problem]:
    """Everything wrong now: broken tasks, bad folder names, seed errors, failed
    environments, and records waiting for the store (what the Problems page lists)."""
    return problems_of(tasse)


@router.get(
    "/tasks/{name}/env/log",
    response_class=PlainTextResponse,
    include_in_schema=True,
    tags=["dashboard"],
)
async def env_log(name: TaskName, tasse: TasseDep) -> PlainTextResponse:
    """The output of the task's last environment build."""
    tasse.get_task(name)  # 404 for a task that does not exist
    tail = views.log_tail(tasse.layout.env_log(name), limit=4 * 1024 * 1024)
    text = tail.text or "no environment build has written output yet\n"
    return PlainTextResponse(text, headers=TEXT_HEADERS)


@router.get("/", response_class=HTMLResponse)
async def overview(
    request: Request,
    tasse: TasseDep,
    session: SessionDep,
    q: Annotated[str, Query(max_length=200)] = "",
    status: Annotated[TaskState | Literal[""], Query()] = "",
    source: Annotated[TaskSource | Literal[""], Query()] = "",
    sort: Annotated[Sort, Query()] = "name",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """Every task: state, schedule in words, next fire, last run, last 20 outcomes, env."""
    query = TaskQuery(
        q=q.strip(),
        states=frozenset([status] if status else []),
        sources=frozenset([source] if source else []),
        sort=sort,
        limit=TASKS_PER_PAGE,
        offset=(page - 1) * TASKS_PER_PAGE,
    )
    listing = await views.overview(tasse, query)
    return render(
        request,
        tasse,
        session,
        "overview.html",
        {
            "section": "overview",
            "live_scope": "overview",
            "rows": listing.rows,
            "counts": listing.counts,
            "page": views.Pager.of(request, page, TASKS_PER_PAGE, listing.total),
            "query": {
                "q": q,
                "status": [status] if status else [],
                "source": [source] if source else [],
                "sort": sort,
            },
            "states": [state.value for state in TaskState],
            "sources": get_args(TaskSource),
            "sorts": SORTS,
            "filter_url": lambda **changes: views.with_query(request, page=None, **changes),
            "tasks_dir": tasse.settings.tasks_dir,
        },
    )
