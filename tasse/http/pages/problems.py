"""Everything wrong right now, in one list: what the Problems page and `GET /problems` show."""

from __future__ import annotations

import time
import weakref

from pydantic import BaseModel

from tasse.service import Tasse


class Problem(BaseModel):
    """One thing a person should fix or know about."""

    #: broken task, bad folder name, seed file, environment, store
    kind: str
    #: the task, folder or file it is about
    subject: str
    detail: str
    #: the page that shows more, if there is one
    link: str | None = None


#: seconds the header's count of problems may be old (counting walks every task)
COUNT_MAX_AGE = 2.0
_counted: weakref.WeakKeyDictionary[Tasse, tuple[float, int]] = weakref.WeakKeyDictionary()


def problem_count(tasse: Tasse) -> int:
    """How many problems there are, at most COUNT_MAX_AGE seconds old (every page shows it)."""
    now = time.monotonic()
    counted = _counted.get(tasse)
    if counted is None or now - counted[0] > COUNT_MAX_AGE:
        counted = _counted[tasse] = (now, len(problems_of(tasse)))
    return counted[1]


def problems_of(tasse: Tasse) -> list[Problem]:
    """Every current problem: tasks first (by name), then the store's."""
    registry = tasse.registry
    found = [
        Problem(kind="broken task", subject=name, detail=str(entry.error), link=f"/tasks/{name}")
        for name, entry in sorted(registry.entries.items())
        if entry.error is not None
    ]
    found += [
        Problem(kind="bad folder name", subject=name, detail=detail)
        for name, detail in sorted(registry.rejected.items())
    ]
    found += [
        Problem(kind="seed file", subject=tasse.settings.pre_seed_jobs or "seed", detail=detail)
        for detail in registry.seed_problems.values()
    ]
    found += [
        Problem(
            kind="environment",
            subject=name,
            detail=tasse.envs.problem(name) or "its environment failed",
            link=f"/tasks/{name}",
        )
        for name in sorted(tasse.envs.failed())
    ]
    found += [
        Problem(kind="notification target", subject=subject, detail=detail, link="/notifications")
        for subject, detail in tasse.notifier.problems()
    ]
    return found + _store_problems(tasse)


def _store_problems(tasse: Tasse) -> list[Problem]:
    records, state = tasse.records, tasse.records.state
    found = []
    if not state.writable:
        found.append(
            Problem(
                kind="store",
                subject=tasse.store.shown_address,
                detail=f"cannot be written since {state.failing_since}: {state.problem}",
            )
        )
    if records.pending_count:
        found.append(
            Problem(
                kind="pending records",
                subject=tasse.store.shown_address,
                detail=f"{records.pending_count} record(s) wait for the store, "
                f"{records.journaled} of them kept in the journal {tasse.settings.journal_path}",
            )
        )
    return found
