"""What each page shows, gathered from `Tasse`: plain data for the templates, no HTML."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import yaml
from fastapi import Request
from markupsafe import Markup

from tasse.cluster.log_tails import LogTails
from tasse.errors import FireTimesBudgetError, TaskConfigError
from tasse.http.pages.charts import outcome_strip
from tasse.http.pages.formats import run_duration
from tasse.models import Run, RunOutline, TaskCounts, TaskInfo
from tasse.schedule.wording import describe_all
from tasse.service import Tasse
from tasse.store.windows import RunWindow
from tasse.tasks.definitions import shown_definition
from tasse.tasks.discovery import TASK_FILE
from tasse.tasks.listing import TaskQuery
from tasse.tasks.task_file import read_task_file

#: a run page shows this much of the log's end at first; the whole file is a link away
LOG_TAIL_BYTES = 256 * 1024
#: runs the duration chart draws
CHART_RUNS = 100
#: runs one calendar reads at most (a task firing every second keeps far fewer by default)
CALENDAR_RUNS = 20_000
#: runs a timeline page draws at most (a day of 50 tasks each minute is 72,000)
TIMELINE_RUNS = 10_000
#: outcomes in an overview row's strip
STRIP_RUNS = 20
#: strips kept drawn (a few pages' worth)
STRIPS_KEPT = 2000


@dataclass(frozen=True)
class LogTail:
    """The end of a run's log, and where in the file it ends (where live output goes on)."""

    text: str
    size: int
    shown: int
    #: why the log could not be read (it is on a node that did not answer)
    problem: str | None = None

    @property
    def truncated(self) -> bool:
        """True when the page shows only the end of the log."""
        return self.shown < self.size


def log_tail(path: Path, limit: int = LOG_TAIL_BYTES) -> LogTail:
    """The last `limit` bytes of a log, from a line start, decoded for the page."""
    try:
        with path.open("rb") as stream:
            size = stream.seek(0, 2)
            start = max(0, size - limit)
            stream.seek(start)
            data = stream.read(size - start)
    except FileNotFoundError:  # a fire that did not run has no log
        return LogTail("", 0, 0)
    return _tail_of(data, size)


async def log_tail_elsewhere(
    tails: LogTails, run_id: str, limit: int = LOG_TAIL_BYTES, timeout: float = 2.0
) -> LogTail:
    """The end of a log in another node's data folder (a worker's run), read from that
    node's API; an empty tail when the run's log is this node's or nobody's."""
    try:
        found = await asyncio.to_thread(tails.read, run_id, limit, timeout)
    except OSError as error:
        return LogTail("", 0, 0, f"the log is elsewhere and cannot be read now: {error}")
    return LogTail("", 0, 0) if found is None else _tail_of(*found)


def _tail_of(data: bytes, size: int) -> LogTail:
    if len(data) < size:
        # Begin at a line: half a line (or half a character) reads as garbage.
        newline = data.find(b"\n")
        data = data[newline + 1 :] if 0 <= newline < len(data) - 1 else data
    return LogTail(data.decode("utf-8", "replace"), size, len(data))


async def next_fires(tasse: Tasse, name: str, count: int = 10) -> tuple[list[datetime], str]:
    """The task's next fire times, or why there are none."""
    try:
        fires = await tasse.next_fires(name, count)
    except FireTimesBudgetError as error:
        return [], str(error)
    if fires:
        return fires, ""
    return [], "None: the task has no schedule, is disabled, or its schedule has ended."


def definition_text(info: TaskInfo) -> str:
    """The task's definition as YAML, secrets masked: task.yaml for a folder task."""
    definition: Any = info.definition
    if definition is None and info.folder is not None:
        try:
            definition = read_task_file(info.name, Path(info.folder) / TASK_FILE) or {}
        except TaskConfigError as error:
            return str(error)
        if isinstance(definition, dict):
            definition = shown_definition(definition)
    return yaml.safe_dump(definition, sort_keys=False, allow_unicode=True, width=100)


async def task_runs(
    tasse: Tasse, name: str, status: str | None, before: str | None, size: int
) -> tuple[list[Run], str | None]:
    """One page of a task's runs, and the id to page on from (None on the last page)."""
    runs = await tasse.list_runs(name, size + 1, status, before)
    return runs[:size], runs[size - 1].id if len(runs) > size else None


async def chart_runs(tasse: Tasse, name: str) -> tuple[list[Run], list[RunOutline]]:
    """The runs the duration chart (last 100) and the 90-day calendar draw."""
    since = datetime.now(UTC) - timedelta(days=90)
    recent, calendar = await asyncio.gather(
        tasse.list_runs(name, CHART_RUNS),
        tasse.run_outlines(RunWindow(since=since, tasks=frozenset([name]), limit=CALENDAR_RUNS)),
    )
    return list(reversed(recent)), calendar


@dataclass(frozen=True)
class Row:
    """One task in the overview."""

    info: TaskInfo
    state: str
    schedule: str
    duration: str
    strip: Markup


@dataclass(frozen=True)
class Listing:
    """One page of the overview: its rows, how many tasks match, and the counts."""

    rows: list[Row]
    total: int
    counts: TaskCounts


async def overview(tasse: Tasse, query: TaskQuery) -> Listing:
    """The overview's page of tasks, each with its last 20 outcomes."""
    infos, total = tasse.find_tasks(query)
    outcomes = await tasse.recent_outcomes([info.name for info in infos], STRIP_RUNS)
    zone = ZoneInfo(tasse.settings.timezone)
    rows = [
        Row(
            info,
            info.state.value,
            describe_all(info.schedules),
            run_duration(info.last_run) if info.last_run else "",
            _strip(outcomes.get(info.name, []), zone),
        )
        for info in infos
    ]
    return Listing(rows, total, tasse.task_counts())


async def window(
    tasse: Tasse, since: datetime, until: datetime, tasks: frozenset[str]
) -> tuple[list[RunOutline], bool]:
    """The runs of these tasks overlapping a time window, and whether there were more."""
    if not tasks:
        return [], False
    window = RunWindow(since=since, until=until, tasks=tasks, limit=TIMELINE_RUNS + 1)
    runs = await tasse.run_outlines(window)
    return runs[:TIMELINE_RUNS], len(runs) > TIMELINE_RUNS


#: strips drawn, by what they show: a page shown again draws only the strips that changed
_strips: OrderedDict[tuple[object, ...], Markup] = OrderedDict()


def _strip(newest_first: list[Run], zone: ZoneInfo) -> Markup:
    # A running run's tooltip says how long so far: its strip is drawn again each second.
    live = any(not run.status.is_final for run in newest_first)
    key = (
        *((run.id, run.status) for run in newest_first),
        int(time.time()) if live else 0,
        zone.key,
    )
    strip = _strips.get(key)
    if strip is None:
        oldest_first = list(reversed(newest_first))
        strip = _strips[key] = outcome_strip(oldest_first, count=STRIP_RUNS, zone=zone)
        while len(_strips) > STRIPS_KEPT:
            _strips.popitem(last=False)
    else:
        _strips.move_to_end(key)
    return strip


@dataclass(frozen=True)
class Pager:
    """Where a page of a list is, and the links to its neighbours."""

    first: int
    last: int
    total: int
    previous_url: str | None
    next_url: str | None

    @classmethod
    def of(cls, request: Request, page: int, size: int, total: int) -> Pager:
        """The pager of page `page` (from 1) of `total` items, `size` a page."""
        first = (page - 1) * size + 1
        last = min(total, page * size)
        return cls(
            first=min(first, total),
            last=last,
            total=total,
            previous_url=with_query(request, page=page - 1) if page > 1 else None,
            next_url=with_query(request, page=page + 1) if last < total else None,
        )


def with_query(request: Request, **changes: object) -> str:
    """This page's address with some query parameters changed (None or "" removes one)."""
    query = dict(request.query_params)
    for key, value in changes.items():
        if value is None or value == "" or (key == "page" and value == 1):
            query.pop(key, None)
        else:
            query[key] = str(value)
    return request.url.path + (f"?{urlencode(query)}" if query else "")
