"""Records for fire times that did not run, so every intended fire has an outcome."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from tasse.models import Run, RunStatus, RunTrigger, new_run_id

#: fire times recorded one by one; more than these (days of a per-second schedule while the
#: server was down) are summed up in one more record
ONE_BY_ONE = 100
#: the error of a fire (or a retry) that did not run because its task is paused
PAUSED = "paused"
#: how a summed-up record's reason begins (`not_run_records`): the fire times it stands for
_SUMMED = re.compile(r"(\d+) fire times from ")


def not_run_record(task: str, scheduled: datetime, status: RunStatus, reason: str) -> Run:
    """The record of one fire that did not run: skipped, missed or coalesced, with why."""
    now = datetime.now(UTC)
    return Run(
        id=new_run_id(now),
        task=task,
        trigger=RunTrigger.schedule,
        status=status,
        scheduled_at=scheduled,
        finished_at=now,
        error=reason,
    )


def not_run_records(task: str, outcomes: Sequence[tuple[datetime, RunStatus, str]]) -> list[Run]:
    """Records for fires that did not run, oldest first; beyond ONE_BY_ONE, the oldest summed up."""
    summed, one_by_one = outcomes[:-ONE_BY_ONE], outcomes[-ONE_BY_ONE:]
    records = []
    if summed:
        first, status, reason = summed[0]
        last = summed[-1][0]
        records.append(
            not_run_record(
                task,
                first,
                status,
                f"{len(summed)} fire times from {first.isoformat()} to {last.isoformat()}: "
                f"{status.value} ({reason})",
            )
        )
    records += [not_run_record(task, *outcome) for outcome in one_by_one]
    return records


class DowntimeTally:
    """The fires that came due while the server was down, summed up for one line of the log.

    After days of downtime a restart finds thousands of them; each is in its task's history,
    and the log says so once rather than once per fire.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._outcomes: Counter[str] = Counter()
        self._tasks: set[str] = set()
        self._first: datetime | None = None
        self._last: datetime | None = None

    def add(self, task: str, scheduled: Sequence[datetime], outcome: str) -> None:
        """Count fires of `task` at these times as `outcome` (`missed`, `caught up`, …)."""
        if not scheduled:
            return
        self._tasks.add(task)
        self._outcomes[outcome] += len(scheduled)
        low, high = min(scheduled), max(scheduled)
        self._first = low if self._first is None else min(self._first, low)
        self._last = high if self._last is None else max(self._last, high)

    def take(self) -> str | None:
        """The summary of what was counted since the last call (None if nothing), and reset."""
        if self._first is None or self._last is None:
            return None
        total = sum(self._outcomes.values())
        outcomes = ", ".join(f"{n} {what}" for what, n in sorted(self._outcomes.items()))
        line = (
            f"{total} fire time(s) of {len(self._tasks)} task(s) came due while the server "
            f"was down ({self._first.isoformat()} to {self._last.isoformat()}): {outcomes}; "
            "each is in its task's history (GET /tasks/{name}/runs)"
        )
        self._reset()
        return line


def fires_of(record: Run) -> int:
    """How many fire times a record of fires that did not run stands for (1 unless summed up)."""
    summed = _SUMMED.match(record.error or "")
    return int(summed.group(1)) if summed else 1
