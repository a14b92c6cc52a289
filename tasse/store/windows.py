"""Runs across tasks: which ones a time window holds, in SQL and in Python alike.

A run occupies the time from its start (`started_at`, else `scheduled_at` for a run that
has not started or a fire that did not run) to its end (`finished_at`, else now: it is
still live). A window holds the runs whose time overlaps it, so a timeline drawn from it
shows runs that began before it and runs still running.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    Table,
    bindparam,
    func,
    or_,
    select,
    union_all,
)

from tasse.models import RunLike, RunStatus

R = TypeVar("R", bound=RunLike)


@dataclass(frozen=True)
class RunWindow:
    """Which runs to list: overlapping `since`…`until` (None: open), of some tasks and statuses."""

    since: datetime | None = None
    until: datetime | None = None
    #: empty: every task
    tasks: frozenset[str] = frozenset()
    #: empty: every status
    statuses: frozenset[RunStatus] = frozenset()
    #: only runs older than this run id (the last one of the page before)
    before: str | None = None
    limit: int = 1000


def window_clauses(runs: Table, window: RunWindow, now: datetime) -> list[ColumnElement[bool]]:
    """The WHERE clauses of the runs a window holds (`in_window` says the same in Python)."""
    c = runs.c
    clauses: list[ColumnElement[bool]] = []
    if window.tasks:
        clauses.append(c.task.in_(sorted(window.tasks)))
    if window.statuses:
        clauses.append(c.status.in_(sorted(status.value for status in window.statuses)))
    if window.before is not None:
        clauses.append(c.id < window.before)
    if window.until is not None:
        clauses.append(func.coalesce(c.started_at, c.scheduled_at, c.finished_at) <= window.until)
    if window.since is not None:
        ended = c.finished_at >= window.since
        # A live run ends now: in a window that began before now, and in no later one.
        clauses.append(or_(ended, c.finished_at.is_(None)) if now >= window.since else ended)
    return clauses


def by_status(runs: Table, since: datetime, now: datetime) -> Select[Any]:
    """How many runs overlap `since`…`now`, by status: those ended since, and live ones.

    The same runs as `window_clauses` (a run that ended, ended by now), in two parts that
    an index on `finished_at` can serve; MariaDB took 1 s over the OR of one part.
    """
    c = runs.c
    parts = [select(c.status).where(c.finished_at >= since)]
    if now >= since:
        begun = func.coalesce(c.started_at, c.scheduled_at) <= now
        parts.append(select(c.status).where(c.finished_at.is_(None), begun))
    held = union_all(*parts).subquery()
    return select(held.c.status, func.count()).group_by(held.c.status)


def in_window(run: RunLike, window: RunWindow, now: datetime) -> bool:
    """Whether the window holds the run (for runs the store does not have yet)."""
    if window.tasks and run.task not in window.tasks:
        return False
    if window.statuses and run.status not in window.statuses:
        return False
    if window.before is not None and run.id >= window.before:
        return False
    return _overlaps(run, window.since, window.until, now)


def _overlaps(run: RunLike, since: datetime | None, until: datetime | None, now: datetime) -> bool:
    start = run.started_at or run.scheduled_at or run.finished_at
    if until is not None and (start is None or start > until):
        return False
    return since is None or (run.finished_at or now) >= since


def newest_of_each(runs: Table, size: int) -> Select[Any] | CompoundSelect[Any]:
    """One statement for the newest `count` runs of each of `size` tasks (`task_0`, …).

    For each task, a range scan of the (task, id) index that stops after `count` rows.

    Not ROW_NUMBER() OVER (PARTITION BY task ORDER BY id DESC): that reads and sorts every
    run of each task, and a task keeps up to a thousand (`keep_runs`). For fifty such tasks
    it took 0.6-0.8 s on SQLite and MariaDB and 0.2 s on PostgreSQL; this 46, 130 and 55 ms
    (SQLite's part of it 10 ms: the rest is making the 1,000 runs).
    """
    parts = [
        select(runs)
        .where(runs.c.task == bindparam(f"task_{index}"))
        .order_by(runs.c.id.desc())
        .limit(bindparam("count"))
        .subquery()
        for index in range(size)
    ]
    # Each one a subquery of its own: SQLite allows no ORDER BY or LIMIT on a compound's parts.
    selects = [select(part) for part in parts]
    return selects[0] if size == 1 else union_all(*selects)


def newest_first(runs: Sequence[R], count: int) -> list[R]:
    """The newest `count` of some runs (run ids sort by creation time)."""
    return sorted(runs, key=lambda run: run.id, reverse=True)[:count]
