"""The scheduler: one APScheduler job per schedule of each task, firing into Tasse.

With `triggers.py`, the only modules that import APScheduler. Each schedule's next fire
time is kept in the job store (`FireTimes`), so a restart knows what it missed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.executors.base import BaseExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from tasse.schedule.triggers import RebootTrigger, Trigger, fingerprint, listing
from tasse.store.fire_times import FireTime, FireTimeStore

#: called with the task name and the fire times that came due (normally one)
FireCallback = Callable[[str, list[datetime]], None]

# APScheduler logs every job it adds at INFO; with thousands of tasks that is noise.
logging.getLogger("apscheduler").setLevel(logging.WARNING)
logger = logging.getLogger(__name__)

#: how far back a restart looks for fires it missed while down (per-second schedules
#: after weeks of downtime would otherwise list millions of times)
RESUME_AT_MOST = timedelta(days=1)


class _FireExecutor(BaseExecutor):  # type: ignore[misc]
    """Hands due fire times to Tasse instead of calling a function.

    Tasse, not APScheduler, decides what a fire means (run, skipped, missed), so that every
    intended fire time gets a recorded outcome rather than APScheduler's silent drop.
    """

    def __init__(self, on_fire: FireCallback, before_fire: Callable[[Any, list[datetime]], None]):
        super().__init__()
        self._on_fire = on_fire
        self._before_fire = before_fire

    def submit_job(self, job: Any, run_times: list[datetime]) -> None:
        self._before_fire(job, run_times)
        self._on_fire(job.id.rpartition("#")[0], run_times)

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        raise NotImplementedError("submit_job hands fires over directly")


#: a job added before the start: APScheduler computes its next run time when it starts
_PENDING: Any = object()


def _never_called() -> None:
    """APScheduler wants a function per job; `_FireExecutor` reports fires without calling it."""


class Scheduler:
    """Keeps one APScheduler job per schedule of each task, inside the running event loop."""

    def __init__(
        self, on_fire: FireCallback, timezone: str, fire_times: FireTimeStore | None = None
    ):
        self._jobs: dict[str, list[str]] = {}
        self._fire_times = fire_times
        #: fire times stored by the last run of the server, until each job is scheduled
        self._stored: dict[str, FireTime] = {}
        self._stored_by_task: dict[str, list[str]] = {}
        self._aps = AsyncIOScheduler(
            timezone=ZoneInfo(timezone),
            executors={"default": _FireExecutor(on_fire, self._store_next_fire)},
            # Every due time reaches Tasse; it records late ones as missed itself.
            job_defaults={"coalesce": False, "misfire_grace_time": None, "max_instances": 1},
        )

    def load_fire_times(self) -> None:
        """Read the next fire times the server stored before (call before scheduling)."""
        if self._fire_times is not None:
            self._stored = self._fire_times.load()
            for job_id in self._stored:
                self._stored_by_task.setdefault(job_id.rpartition("#")[0], []).append(job_id)

    def start(self) -> None:
        """Start firing; jobs added before are scheduled in one go."""
        self._aps.start()
        # What no task claimed at start belongs to tasks (or schedules) that are gone.
        if self._fire_times is not None and self._stored:
            try:
                self._fire_times.forget(self._stored)
            except Exception:
                logger.exception("stored fire times of removed tasks could not be dropped")
        self._stored, self._stored_by_task = {}, {}

    def shutdown(self) -> None:
        """Stop firing, and store every schedule's next fire time for the next start."""
        if not self._aps.running:
            return
        if self._fire_times is not None:
            times = {j.id: (fingerprint(j.trigger), j.next_run_time) for j in self._aps.get_jobs()}
            try:
                self._fire_times.save(times)
            except Exception:  # the stop goes on; the next start computes times afresh
                logger.exception("next fire times could not be stored")
        self._aps.shutdown(wait=False)

    def _store_next_fire(self, job: Any, run_times: list[datetime]) -> None:
        # Stored before the fire is handed on: after a crash, a fire that ran is not
        # taken for one that was missed and run again.
        if self._fire_times is None:
            return
        upcoming_at = job.trigger.get_next_fire_time(run_times[-1], datetime.now(UTC))
        try:
            self._fire_times.save({job.id: (fingerprint(job.trigger), upcoming_at)})
        except Exception:  # the fire goes on; only what a restart could know is lost
            logger.exception("next fire time of %s could not be stored", job.id)

    def schedule(self, name: str, triggers: Sequence[Trigger], enabled: bool = True) -> None:
        """Replace the task's jobs with one job per trigger (none for a disabled task)."""
        previous = self._jobs.get(name, [])
        self.unschedule(name)
        if not enabled:
            # Its stored times would make every fire since it was disabled look missed
            # once it is enabled again.
            self._forget_fire_times(name, previous)
            return
        now = datetime.now(UTC)
        ids = []
        for index, trigger in enumerate(triggers):
            if isinstance(trigger, DateTrigger) and trigger.run_date < now:
                continue  # a one-off date that has passed has nothing left to fire
            if isinstance(trigger, RebootTrigger) and self._aps.running:
                continue  # a task added or changed while running: its @reboot is at the next start
            job_id = f"{name}#{index}"
            options = {}
            stored = self._stored.pop(job_id, None)
            if stored is not None and stored[0] == fingerprint(trigger) and stored[1] is not None:
                # The same schedule as before the restart: carry on from its stored time,
                # so fires due while the server was down come due now (and are recorded),
                # at most a day back: APScheduler lists every missed time, on the loop.
                options["next_run_time"] = max(stored[1], now - RESUME_AT_MOST)
            self._aps.add_job(_never_called, trigger, id=job_id, name=name, **options)
            ids.append(job_id)
        self._jobs[name] = ids

    def resume_after(self, last: Mapping[str, datetime]) -> int:
        """Carry each task's jobs on from its `last` fire: what is due since fires at once.

        A cluster node taking over the schedule: its jobs have run on (their fires went to
        the node that held the lease before), so each is set to the first time after the
        task's last claimed fire — at most a day back, as at a restart — and APScheduler
        hands every time due since then over at once. How many jobs were moved.
        """
        now = datetime.now(UTC)
        moved = 0
        for job in self._aps.get_jobs():
            previous = last.get(job.name)
            current = getattr(job, "next_run_time", None)
            if previous is None or current is None:
                continue
            after = job.trigger.get_next_fire_time(previous, previous)
            # Later too: an interval starts when its job is added, so each node has its own
            # phase; the cluster's is the one its claims were made in.
            if after is not None and after != current:
                job.modify(next_run_time=max(after, now - RESUME_AT_MOST))
                moved += 1
        if moved:
            self._aps.wakeup()
        return moved

    def remove(self, name: str) -> None:
        """The task is gone: unschedule it and forget its stored fire times."""
        previous = self._jobs.get(name, [])
        self.unschedule(name)
        self._forget_fire_times(name, previous)

    def _forget_fire_times(self, name: str, previous: list[str]) -> None:
        # The rows there can be: the jobs it had, and what the last run of the server
        # stored for it (at start, before it is scheduled).
        job_ids = set(previous)
        for job_id in self._stored_by_task.pop(name, []):
            if self._stored.pop(job_id, None) is not None:
                job_ids.add(job_id)
        if self._fire_times is not None and job_ids:
            try:
                self._fire_times.forget(job_ids)
            except Exception:
                logger.exception("stored fire times of task %s could not be removed", name)

    def unschedule(self, name: str) -> None:
        """Remove the task's jobs, if any."""
        for job_id in self._jobs.pop(name, []):
            if self._aps.get_job(job_id) is not None:
                self._aps.remove_job(job_id)

    def upcoming(self, name: str, count: int) -> list[datetime]:
        """The task's next `count` fire times: from each job's next one, as they will fire."""
        return listing(self._next_runs(name), count)

    def next_run_at(self, name: str) -> datetime | None:
        """The task's next fire time, or None when nothing is scheduled."""
        return min((t for _, t in self._next_runs(name) if t is not None), default=None)

    def next_run_times(self) -> dict[str, datetime]:
        """Every scheduled task's next fire time, in one pass over the jobs (for listings)."""
        if not self._aps.running:  # jobs added before the start have no times yet
            return {name: at for name in self._jobs if (at := self.next_run_at(name)) is not None}
        found: dict[str, datetime] = {}
        for job in self._aps.get_jobs():
            at = job.next_run_time
            if at is not None and (job.name not in found or at < found[job.name]):
                found[job.name] = at
        return found

    def _next_runs(self, name: str) -> list[tuple[Trigger, datetime | None]]:
        found = []
        for job_id in self._jobs.get(name, []):
            job = self._aps.get_job(job_id)
            if job is None:
                continue
            # A job added before the start has its time once started (unless it was stored).
            first = getattr(job, "next_run_time", _PENDING)
            if first is _PENDING:
                first = job.trigger.get_next_fire_time(None, datetime.now(UTC))
            found.append((job.trigger, first))
        return found
