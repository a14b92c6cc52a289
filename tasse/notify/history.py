"""What the rules remember of each task: failures in a row, recent durations, the last success.

Kept in memory and brought up to date by every outcome the rules see; at start, read from
the store for the tasks whose rules look further back than the last run (`needs_history`),
and taken from each task's last run for the rest (is it failing now?).
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from tasse.models import Run, RunStatus, RunTrigger

#: successful runs whose durations make "usual" (the median), as Healthchecks #236 asks
DURATIONS_KEPT = 20
#: fewer successes than this make no median worth comparing with
DURATIONS_NEEDED = 3
#: outcomes that continue a streak of failures
FAILURES = (RunStatus.failed, RunStatus.timed_out)


def duration_of(run: Run) -> float | None:
    """Seconds a run took, if it started and ended."""
    if run.started_at is None or run.finished_at is None:
        return None
    return (run.finished_at - run.started_at).total_seconds()


@dataclass
class TaskHistory:
    """One task's past as its rules need it."""

    #: final failures in a row (attempts that will be retried do not count)
    streak: int = 0
    #: the newest successful durations, oldest first
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=DURATIONS_KEPT))
    #: when the task last succeeded; None: not since Tasse knows it
    last_success: datetime | None = None

    @property
    def median(self) -> float | None:
        """The median successful duration, once there are enough to say."""
        if len(self.durations) < DURATIONS_NEEDED:
            return None
        return statistics.median(self.durations)

    def note(self, run: Run) -> None:
        """A final outcome (not one to be retried) happened."""
        if run.status in FAILURES:
            self.streak += 1
        elif run.status is RunStatus.succeeded:
            self.streak = 0
            self.last_success = run.finished_at
            took = duration_of(run)
            if took is not None:
                self.durations.append(took)


def history_from(recent: Sequence[Run], successes: Sequence[Run]) -> TaskHistory:
    """A task's history from its newest runs and newest successes (each newest first)."""
    history = TaskHistory()
    newer: Run | None = None
    for run in recent:
        if run.status is RunStatus.succeeded:
            break
        # A failure followed by its retry was not final: the retry's outcome counts.
        if run.status in FAILURES and (newer is None or newer.trigger is not RunTrigger.retry):
            history.streak += 1
        newer = run
    for run in reversed(successes):
        took = duration_of(run)
        if took is not None:
            history.durations.append(took)
    if successes:
        history.last_success = successes[0].finished_at
    return history


def history_of_last(run: Run | None) -> TaskHistory:
    """A task's history from its last run alone (enough for `recovered`)."""
    history = TaskHistory()
    if run is not None and run.status in FAILURES:
        history.streak = 1
    return history
