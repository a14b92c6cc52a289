"""A task's policies, resolved against the server's defaults, and the decisions they make.

Pure functions only: which fire times run and what the others are recorded as, how long a
retry waits. The dispatcher acts on the answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tasse.models import RunStatus
from tasse.settings import Settings
from tasse.tasks.task import Catchup, Overlap, TaskSpec

#: `catchup: all` runs at most this many of the fires missed while down (the latest ones)
CATCHUP_AT_MOST = 100
#: No schedule fires twice within a second (intervals are 1 s or more, calendars count whole
#: seconds; jitter aside) but for a clock change's catch-ups, a microsecond apart
#: (schedule/wallclock.py): fires this close are one burst of intended runs, not a backlog
BURST = timedelta(seconds=1)


@dataclass(frozen=True)
class Policy:
    """How one task's fires and runs are handled."""

    overlap: Overlap = "skip"
    #: runs alive at once before `overlap` applies; None: no limit of the task's own
    max_parallel: int | None = 1
    misfire_grace_time: float = 60.0
    catchup: Catchup = "latest"
    retries: int = 0
    retry_delay: float = 10.0
    retry_max_delay: float = 3600.0
    kill_grace: float = 10.0
    #: seconds of random delay, at most, for each schedule that sets none of its own
    jitter: float = 0.0


def policy_of(spec: TaskSpec, settings: Settings) -> Policy:
    """The task's policy: its own keys, the server's defaults for the rest."""
    parallel = spec.max_parallel
    if parallel is None:
        parallel = None if spec.overlap == "parallel" else 1
    return Policy(
        overlap=spec.overlap,
        max_parallel=parallel,
        misfire_grace_time=spec.misfire_grace_time or settings.misfire_grace_time,
        catchup=spec.catchup,
        retries=spec.retries,
        retry_delay=spec.retry_delay,
        retry_max_delay=spec.retry_max_delay,
        kill_grace=settings.kill_grace if spec.kill_grace is None else spec.kill_grace,
        jitter=spec.jitter or 0.0,
    )


def retry_delay(policy: Policy, retry: int) -> float:
    """Seconds before retry number `retry` (1, 2, …): doubling from `retry_delay`, capped."""
    if policy.retry_delay <= 0:
        return 0.0
    # 2 ** retry overflows a float beyond ~1000; the cap is reached long before.
    doublings = min(retry - 1, 64)
    return min(policy.retry_delay * math.pow(2, doublings), policy.retry_max_delay)


@dataclass
class FireDecision:
    """What becomes of the fire times that came due together."""

    #: fire times to run, oldest first (more than one only for `catchup: all`)
    run: list[datetime] = field(default_factory=list)
    #: fire times that do not run: (time, outcome, reason), oldest first
    not_run: list[tuple[datetime, RunStatus, str]] = field(default_factory=list)


def decide_fires(
    due: list[datetime],
    now: datetime,
    started_at: datetime,
    policy: Policy,
    caught_up: bool = False,
) -> FireDecision:
    """Sort due fire times into runs and records, by the catch-up policy and grace time.

    Times before `started_at` came due while the server was down: `catchup` decides
    which of them run (the grace time does not apply to them); with `latest`, one per
    task (`caught_up`: another of its schedules has caught up already). Later times came due while
    it was up; several at once mean it was busy, and only the latest runs (the others are
    `coalesced` into it), if it is not later than the grace time. The latest may be a burst
    of a clock change's catch-ups (less than `BURST` apart): each of them runs, as cron runs
    each time the clocks skipped.
    """
    decision = FireDecision()
    while_down = [t for t in due if t < started_at]
    while_up = due[len(while_down) :]
    if while_up:
        burst = _last_burst(while_up)
        earlier, latest = while_up[: -len(burst)], burst[-1]
        late = (now - latest).total_seconds()
        if late > policy.misfire_grace_time:
            reason = (
                f"came {late:.0f} s late, beyond the grace time of {policy.misfire_grace_time:g} s"
            )
            decision.not_run += [(t, RunStatus.missed, reason) for t in while_up]
        else:
            merged = f"due together with the fire at {latest.isoformat()}, which ran instead"
            decision.not_run += [(t, RunStatus.coalesced, merged) for t in earlier]
            decision.run += burst
    if while_down:
        _catch_up(decision, while_down, policy.catchup, caught_up)
    return decision


def _last_burst(times: list[datetime]) -> list[datetime]:
    """The last of the times, with those before it less than `BURST` apart (oldest first).

    At most CATCHUP_AT_MOST of them, as for `catchup: all` (a seconds line can skip thousands).
    """
    start = len(times) - 1
    while start > max(0, len(times) - CATCHUP_AT_MOST) and times[start] - times[start - 1] < BURST:
        start -= 1
    return times[start:]


def _catch_up(
    decision: FireDecision, while_down: list[datetime], catchup: Catchup, caught_up: bool
) -> None:
    down = "the server was down"
    if catchup == "all":
        beyond = while_down[:-CATCHUP_AT_MOST]
        caught = while_down[len(beyond) :]
        why = f"catchup: all runs the latest {CATCHUP_AT_MOST} fires only"
        missed = [(t, RunStatus.missed, f"{down}; {why}") for t in beyond]
    elif catchup == "latest" and not decision.run and not caught_up:
        caught = while_down[-1:]
        why = f"the fire at {caught[0].isoformat()} was caught up instead (catchup: latest)"
        missed = [(t, RunStatus.missed, f"{down}; {why}") for t in while_down[:-1]]
    else:
        caught = []
        if catchup == "none":
            why = "catchup: none"
        elif not decision.run:  # caught_up
            why = "another schedule of the task caught up a fire (catchup: latest)"
        else:
            why = f"the fire at {decision.run[0].isoformat()} ran instead (catchup: latest)"
        missed = [(t, RunStatus.missed, f"{down}; {why}") for t in while_down]
    decision.run[:0] = caught
    decision.not_run[:0] = missed
