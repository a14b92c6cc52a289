"""The only module that imports APScheduler: task specs → triggers → jobs that fire into Tasse."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.executors.base import BaseExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from tasse.errors import TaskConfigError
from tasse.models import Task
from tasse.schedule.crontab import is_reboot, parse_crontab
from tasse.schedule.specs import CronSpec, DateSpec, IntervalSpec, check_timezone
from tasse.store.fire_times import FireTime, FireTimes, fingerprint
from tasse.tasks.discovery import TASK_FILE

#: one schedule of a task, as task.yaml gives it
Schedule = IntervalSpec | CronSpec | DateSpec | str

#: called with the task name and the fire times that came due (normally one)
FireCallback = Callable[[str, list[datetime]], None]

# APScheduler logs every job it adds at INFO; with thousands of tasks that is noise.
logging.getLogger("apscheduler").setLevel(logging.WARNING)
logger = logging.getLogger(__name__)

#: how far back a restart looks for fires it missed while down (per-second schedules
#: after weeks of downtime would otherwise list millions of times)
RESUME_AT_MOST = timedelta(days=1)


def build_triggers(task: Task, default_timezone: str) -> list[BaseTrigger]:
    """Turn every schedule of a task into an APScheduler trigger, or fail naming the key."""
    spec = task.spec
    keyed: list[tuple[str, Schedule]] = []
    if spec.scheduler:
        keyed.append(("scheduler", spec.scheduler))
    if spec.schedule:
        keyed.append(("schedule", spec.schedule))
    keyed += [(f"schedules.{index}", item) for index, item in enumerate(spec.schedules)]
    zone = spec.timezone or default_timezone
    return [
        _build_trigger(task, key, item, ZoneInfo(_zone_of(item) or zone)) for key, item in keyed
    ]


def _zone_of(schedule: Schedule) -> str | None:
    # A crontab line has no zone of its own; it uses the task's (or the server's).
    return None if isinstance(schedule, str) else schedule.timezone


def _build_trigger(task: Task, key: str, spec: Schedule, zone: ZoneInfo) -> BaseTrigger:
    try:
        trigger = _make_trigger(task, key, spec, zone)
        trigger.get_next_fire_time(None, datetime.now(UTC))  # dates beyond year 9999 fail here
    except TaskConfigError:
        raise
    except (ValueError, OverflowError) as error:
        raise TaskConfigError(task.name, task.folder / TASK_FILE, str(error), key) from None
    return trigger


def _make_trigger(task: Task, key: str, spec: Schedule, zone: ZoneInfo) -> BaseTrigger:
    file = task.folder / TASK_FILE
    # The task's `jitter` is the default of schedules that set none themselves.
    jitter = task.spec.jitter
    if isinstance(spec, str):
        # The line was checked when task.yaml was read.
        return crontab_trigger(spec, zone.key, jitter)
    if isinstance(spec, IntervalSpec):
        if spec.period_seconds() <= 0:
            raise TaskConfigError(
                task.name,
                file,
                "an interval needs a length: set seconds, minutes, hours, days or weeks above 0",
                key,
            )
        options = spec.model_dump(exclude={"trigger", "timezone"}, exclude_none=True)
        options.setdefault("jitter", jitter)
        return _Interval(spec.start_date, timezone=zone, **options)
    if isinstance(spec, DateSpec):
        return DateTrigger(run_date=spec.run_date, timezone=zone)
    return _build_cron(task, key, spec, zone, jitter)


class _Interval(IntervalTrigger):  # type: ignore[misc]
    """An interval trigger that remembers the start date the task set, if any.

    Without one, APScheduler starts it "now" each time it is built; the fingerprint that
    tells a restart whether a schedule is unchanged must not see that (fire_times).
    """

    __slots__ = ("set_start_date",)

    def __init__(self, set_start_date: datetime | None, **options: Any):
        super().__init__(**options)
        self.set_start_date = set_start_date


def _build_cron(
    task: Task, key: str, spec: CronSpec, zone: ZoneInfo, jitter: float | None
) -> BaseTrigger:
    dates = {
        "start_date": spec.start_date,
        "end_date": spec.end_date,
        "jitter": jitter if spec.jitter is None else spec.jitter,
    }
    try:
        return CronTrigger(timezone=zone, **spec.fields(), **dates)
    except ValueError as error:
        # APScheduler's message names the value, not the field: find the field ourselves.
        for name, value in spec.fields().items():
            try:
                CronTrigger(timezone=zone, **{name: value})
            except ValueError as field_error:
                raise TaskConfigError(
                    task.name,
                    task.folder / TASK_FILE,
                    f"{field_error} (got {value!r})",
                    f"{key}.{name}",
                ) from None
        raise TaskConfigError(task.name, task.folder / TASK_FILE, str(error), key) from None


def crontab_trigger(line: str, zone: str, jitter: float | None = None) -> BaseTrigger:
    """A trigger for a crontab line in a time zone (ValueError for a bad line or zone)."""
    if is_reboot(line):
        return RebootTrigger()
    return CrontabTrigger(line, ZoneInfo(check_timezone(zone)), jitter)


class RebootTrigger(BaseTrigger):  # type: ignore[misc]
    """`@reboot`: fires once, as the server starts (the scheduler adds it only then)."""

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        return None if previous_fire_time else now

    def __str__(self) -> str:
        return "@reboot"


def upcoming(triggers: Sequence[BaseTrigger], count: int, now: datetime) -> list[datetime]:
    """The next `count` fire times of all triggers together, in order, without duplicates."""
    times: set[datetime] = set()
    for trigger in triggers:
        if isinstance(trigger, RebootTrigger):
            continue  # no time of its own: it fires at the next start of the server
        previous: datetime | None = None
        for _ in range(count):
            try:
                fire = trigger.get_next_fire_time(previous, previous or now)
            except OverflowError:  # the calendar ends at year 9999
                break
            if fire is None:
                break
            if fire >= now:  # a date trigger offers its date even once it has passed
                times.add(fire)
            previous = fire
    return sorted(times)[:count]


class CrontabTrigger(BaseTrigger):  # type: ignore[misc]
    """A crontab line, fired as Debian's cron fires it, also across DST changes.

    A line naming fixed hours whose time falls into a skipped hour (spring forward) fires
    once, right after the jump; in a repeated hour (fall back) it fires once, in the first
    pass. Lines with `*` hours fire by the clock, as cron runs them.
    """

    def __init__(self, line: str, zone: ZoneInfo, jitter: float | None = None):
        fields = parse_crontab(line)
        self.line = line
        # Both are part of what identifies the schedule (fire_times.fingerprint).
        self.timezone = zone
        self.jitter = jitter
        self._fixed_hours = fields[0].hour != "*"
        self._triggers = [CronTrigger(timezone=zone, **f.as_options()) for f in fields]

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        fire = self._next_by_the_clock(previous_fire_time, now)
        if fire is None or not self.jitter:
            return fire
        jittered: datetime = self._apply_jitter(fire, self.jitter, now)
        return jittered

    def _next_by_the_clock(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        while True:
            times = [t.get_next_fire_time(previous_fire_time, now) for t in self._triggers]
            fire: datetime | None = min((t for t in times if t is not None), default=None)
            if fire is None or not self._fixed_hours:
                return fire
            if not _exists(fire):
                return _end_of_gap(fire)
            if fire.fold == 1 and fire.replace(fold=0).astimezone(UTC) != fire.astimezone(UTC):
                previous_fire_time = now = fire  # the hour repeats; it fired the first time
                continue
            return fire

    def __str__(self) -> str:
        return f"crontab[{self.line}]"


def _exists(moment: datetime) -> bool:
    """False for a wall time the clocks skipped (02:30 on a spring-forward night)."""
    round_trip = moment.astimezone(UTC).astimezone(moment.tzinfo)
    return round_trip.replace(tzinfo=None) == moment.replace(tzinfo=None)


def _end_of_gap(moment: datetime) -> datetime:
    """The instant the clocks jumped over `moment`'s skipped wall time."""
    wall = moment.replace(tzinfo=None)
    low, high = sorted(moment.replace(fold=f).astimezone(UTC) for f in (0, 1))
    while high - low > timedelta(microseconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(moment.tzinfo).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0).astimezone(moment.tzinfo)


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


def _never_called() -> None:
    """APScheduler wants a function per job; `_FireExecutor` reports fires without calling it."""


class Scheduler:
    """Keeps one APScheduler job per schedule of each task, inside the running event loop."""

    def __init__(self, on_fire: FireCallback, timezone: str, fire_times: FireTimes | None = None):
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

    def schedule(self, task: Task, triggers: Sequence[BaseTrigger]) -> None:
        """Replace the task's jobs with one job per trigger (none for a disabled task)."""
        previous = self._jobs.get(task.name, [])
        self.unschedule(task.name)
        if not task.spec.enabled:
            # Its stored times would make every fire since it was disabled look missed
            # once it is enabled again.
            self._forget_fire_times(task.name, previous)
            return
        now = datetime.now(UTC)
        ids = []
        for index, trigger in enumerate(triggers):
            if isinstance(trigger, DateTrigger) and trigger.run_date < now:
                continue  # a one-off date that has passed has nothing left to fire
            if isinstance(trigger, RebootTrigger) and self._aps.running:
                continue  # a task added or changed while running: its @reboot is at the next start
            job_id = f"{task.name}#{index}"
            options = {}
            stored = self._stored.pop(job_id, None)
            if stored is not None and stored[0] == fingerprint(trigger) and stored[1] is not None:
                # The same schedule as before the restart: carry on from its stored time,
                # so fires due while the server was down come due now (and are recorded),
                # at most a day back: APScheduler lists every missed time, on the loop.
                options["next_run_time"] = max(stored[1], now - RESUME_AT_MOST)
            self._aps.add_job(_never_called, trigger, id=job_id, name=task.name, **options)
            ids.append(job_id)
        self._jobs[task.name] = ids

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

    def next_run_at(self, name: str) -> datetime | None:
        """The task's next fire time, or None when nothing is scheduled."""
        times = []
        for job_id in self._jobs.get(name, []):
            job = self._aps.get_job(job_id)
            if job is not None and job.next_run_time is not None:
                times.append(job.next_run_time)
        return min(times, default=None)
