"""Listing tasks: each one's state, filters, sort orders, pages and counts.

With 10,000 tasks a full `TaskInfo` each (policies, environment, the definition) costs far
more than a page needs, so filters and sort orders read only cheap facts of each entry —
its name, source, description, state, next and last run — and the caller builds the
`TaskInfo`s of the page alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from tasse.models import Run, RunStatus, TaskCounts, TaskSource, TaskState
from tasse.tasks.registry import TaskEntry

#: how `GET /tasks?sort=` orders: by name (either way), the next fire soonest first, the
#: newest last run first, or by state in `TaskState`'s order; ties go by name
Sort = Literal["name", "-name", "next", "last", "state"]
#: last outcomes that put a task in the `failed` state
FAILED = frozenset({RunStatus.failed, RunStatus.timed_out, RunStatus.interrupted})
_LIVE = frozenset({RunStatus.queued, RunStatus.running})
#: what sorts after every real time (never fires, never ran)
_NEVER = datetime.max.replace(tzinfo=UTC)
_RANK = {state: rank for rank, state in enumerate(TaskState)}
# Looked up once: reading a member off its enum class costs a microsecond on Python 3.11,
# as much as the rest of `state_of`.
_BROKEN, _PAUSED, _RUNNING, _DISABLED, _FAILED, _OK, _NEVER_RAN = TaskState


@dataclass(frozen=True)
class TaskQuery:
    """What `GET /tasks` asks for: filters (each empty one lets all through), order, page."""

    #: a case-insensitive part of the name, the title or the description
    q: str = ""
    states: frozenset[TaskState] = frozenset()
    sources: frozenset[TaskSource] = frozenset()
    sort: Sort = "name"
    #: None: every task from `offset` on
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class Facts:
    """What the other parts know of tasks, as one listing (or one task's answer) asks it."""

    source: Callable[[str], TaskSource]
    #: why the environment of that name cannot be had, if it cannot
    env_problem: Callable[[str], str | None]
    paused: Callable[[str], bool]
    #: the tasks a run of which is running now
    running: Container[str]
    last_runs: Mapping[str, Run]
    next_run_at: Callable[[str], datetime | None]


def state_of(entry: TaskEntry, facts: Facts) -> TaskState:
    """The task's state: the first of `TaskState`'s members, in their order, that applies."""
    # Called for every task by counts, `status=` and `sort=state`: kept to lookups.
    task, name = entry.task, entry.name
    env = name if task is None else task.reference or name  # a reference runs in its target's
    if entry.error is not None or facts.env_problem(env) is not None:
        return _BROKEN
    if facts.paused(name):
        return _PAUSED
    last = facts.last_runs.get(name)
    # A last run that is not final is live too: another node's, or not yet heard of.
    if name in facts.running or (last is not None and last.status in _LIVE):
        return _RUNNING
    if task is None or not task.spec.enabled:
        return _DISABLED
    if last is None:
        return _NEVER_RAN
    return _FAILED if last.status in FAILED else _OK


def select(
    entries: Iterable[TaskEntry], query: TaskQuery, facts: Facts
) -> tuple[list[TaskEntry], int]:
    """The entries of the query's page, in its order, and how many pass its filters."""
    chosen = [entry for entry in entries if _passes(entry, query, facts)]
    chosen.sort(key=lambda entry: entry.name, reverse=query.sort == "-name")
    # Sorting is stable: after the name sort, equal keys stay in name order.
    key = _sort_key(query.sort, facts)
    if key is not None:
        chosen.sort(key=key)
    end = None if query.limit is None else query.offset + query.limit
    return chosen[query.offset : end], len(chosen)


def count(entries: Mapping[str, TaskEntry], facts: Facts) -> TaskCounts:
    """How many tasks there are, by state and by source."""
    states = Counter(state_of(entry, facts) for entry in entries.values())
    sources = Counter(facts.source(name) for name in entries)
    return TaskCounts(
        total=len(entries),
        by_state={state: states[state] for state in TaskState},
        by_source={source: sources[source] for source in get_args(TaskSource)},
    )


def _passes(entry: TaskEntry, query: TaskQuery, facts: Facts) -> bool:
    # The cheapest tests first; the state, which asks three parts, last.
    if query.sources and facts.source(entry.name) not in query.sources:
        return False
    if query.q and not _mentions(entry, query.q.casefold()):
        return False
    return not query.states or state_of(entry, facts) in query.states


def _mentions(entry: TaskEntry, needle: str) -> bool:
    if needle in entry.name.casefold():
        return True
    if entry.task is None:
        return False
    spec = entry.task.spec
    return needle in spec.description.casefold() or needle in (spec.title or "").casefold()


def _sort_key(sort: Sort, facts: Facts) -> Callable[[TaskEntry], Any] | None:
    if sort == "next":
        return lambda entry: facts.next_run_at(entry.name) or _NEVER
    if sort == "last":
        # Newest first and never-run last, in one ascending sort: the negated timestamp.
        return lambda entry: -_last_run_at(facts.last_runs.get(entry.name))
    if sort == "state":
        return lambda entry: _RANK[state_of(entry, facts)]
    return None


def _last_run_at(run: Run | None) -> float:
    if run is None:
        return float("-inf")
    moment = run.finished_at or run.started_at or run.scheduled_at
    return moment.timestamp() if moment is not None else float("-inf")
