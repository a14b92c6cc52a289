"""Which events a recorded outcome tells of, by the task's `notify:` rules and the defaults.

Pure: given the run, the task's rules, what the task's history was until now and whether
the run will be retried, the events and the lines that explain them. The caller then
brings the history up to date (`TaskHistory.note`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from tasse.models import Run, RunStatus
from tasse.notify.history import FAILURES, TaskHistory, duration_of
from tasse.runs.ledger import PAUSED
from tasse.tasks.notify_spec import Limit, NotifySpec

#: outcomes told as an event of the same name
_BY_STATUS = {
    RunStatus.failed: "failed",
    RunStatus.timed_out: "timed_out",
    RunStatus.missed: "missed",
    RunStatus.skipped: "skipped",
    RunStatus.succeeded: "succeeded",
}


@dataclass(frozen=True)
class Found:
    """What an outcome tells: its events, first the main one, and lines that say why."""

    events: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)


def events_of(
    run: Run,
    spec: NotifySpec,
    defaults: Collection[str],
    history: TaskHistory,
    retried: bool,
) -> Found:
    """The events a final outcome tells of (none for one that is retried)."""
    on = set(defaults if spec.when is None else spec.when)
    found = Found()
    if retried or not run.status.is_final:
        return found  # its retry's outcome is what counts
    event = _BY_STATUS.get(run.status)
    if event == "skipped" and run.error == PAUSED:
        event = None  # a person paused it: nothing to tell
    if event in on:
        found.events.append(event)
    if run.status in FAILURES:
        _failure_rules(run, spec, on, history, found)
    elif run.status is RunStatus.succeeded:
        if history.streak and "recovered" in on:
            found.events.append("recovered")
            found.details.append(f"after {history.streak} failure(s) in a row")
        _duration_rules(run, spec, history, found)
    return found


def _failure_rules(
    run: Run, spec: NotifySpec, on: set[str], history: TaskHistory, found: Found
) -> None:
    if run.attempt > 1 and "retries_exhausted" in on:
        found.events.append("retries_exhausted")
        found.details.append(f"failed on all {run.attempt} attempts")
    streak = history.streak + 1
    if spec.after_failures and streak == spec.after_failures:
        found.events.append("after_failures")
        found.details.append(f"{streak} failures in a row")


def _duration_rules(run: Run, spec: NotifySpec, history: TaskHistory, found: Found) -> None:
    took = duration_of(run)
    if took is None:
        return
    longer = _bound(spec.longer_than, history)
    if longer is not None and took > longer:
        found.events.append("longer_than")
        found.details.append(_took(took, spec.longer_than, longer, history, "longer"))
    shorter = _bound(spec.shorter_than, history)
    if shorter is not None and took < shorter:
        found.events.append("shorter_than")
        found.details.append(_took(took, spec.shorter_than, shorter, history, "shorter"))


def _bound(limit: Limit | None, history: TaskHistory) -> float | None:
    """The limit in seconds (a factor of the median needs a median to multiply)."""
    if limit is None:
        return None
    if limit.factor is None:
        return limit.seconds
    median = history.median
    return None if median is None else limit.factor * median


def _took(took: float, limit: Limit | None, bound: float, history: TaskHistory, way: str) -> str:
    assert limit is not None
    said = f"took {took:.1f} s, {way} than {limit.describe()}"
    if limit.factor:
        count = len(history.durations)
        said += f" ({bound:.1f} s; median {history.median:.1f} s of the last {count} successes)"
    return said
