"""Schedules as APScheduler triggers: interval, cron mapping, date, crontab line, @reboot.

With `scheduler.py` and `mapping.py`, the only modules that import APScheduler. A trigger
answers "when next?" (`get_next_fire_time(previous_fire_time, now)`); given a previous fire
time, every trigger here answers from it alone, never from `now` (firing.py), so `listing`
and `upcoming` list exactly what the scheduler fires, by chaining the same call.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from tasse.errors import ScheduleError
from tasse.schedule.cronline import is_reboot, parse_line
from tasse.schedule.firing import next_fire_time
from tasse.schedule.mapping import CronMappingTrigger
from tasse.schedule.specs import CronSpec, DateSpec, IntervalSpec
from tasse.schedule.wallclock import LineTimes
from tasse.values import check_timezone

#: one schedule of a task, as task.yaml gives it
Schedule = IntervalSpec | CronSpec | DateSpec | str
#: what the scheduler fires by; other parts hold triggers without importing APScheduler
Trigger: TypeAlias = BaseTrigger


def make_trigger(schedule: Schedule, zone: ZoneInfo, jitter: float | None = None) -> Trigger:
    """The trigger of one schedule in a zone; `jitter` is the default of schedules without one.

    Raises ScheduleError naming the field at fault, if the schedule names one.
    """
    try:
        trigger = _make_trigger(schedule, zone, jitter)
        trigger.get_next_fire_time(None, datetime.now(UTC))  # dates beyond year 9999 fail here
    except ScheduleError:
        raise
    except (ValueError, OverflowError) as error:
        raise ScheduleError(str(error)) from None
    return trigger


def _make_trigger(schedule: Schedule, zone: ZoneInfo, jitter: float | None) -> Trigger:
    if isinstance(schedule, str):
        # The line was checked when task.yaml was read.
        return crontab_trigger(schedule, zone.key, jitter)
    if isinstance(schedule, IntervalSpec):
        if schedule.period_seconds() <= 0:
            raise ScheduleError(
                "an interval needs a length: set seconds, minutes, hours, days or weeks above 0"
            )
        options = schedule.model_dump(exclude={"trigger", "timezone"}, exclude_none=True)
        options.setdefault("jitter", jitter)
        return _Interval(schedule.start_date, timezone=zone, **options)
    if isinstance(schedule, DateSpec):
        return DateTrigger(run_date=schedule.run_date, timezone=zone)
    return _cron_mapping(schedule, zone, jitter)


class _Interval(IntervalTrigger):  # type: ignore[misc]
    """An interval trigger that remembers the start date the task set, if any.

    Without one, APScheduler starts it "now" each time it is built; the fingerprint that
    tells a restart whether a schedule is unchanged must not see that (fire_times).
    """

    __slots__ = ("set_start_date",)

    def __init__(self, set_start_date: datetime | None, **options: Any):
        super().__init__(**options)
        self.set_start_date = set_start_date


def _cron_mapping(spec: CronSpec, zone: ZoneInfo, jitter: float | None) -> Trigger:
    dates = {
        "start_date": spec.start_date,
        "end_date": spec.end_date,
        "jitter": jitter if spec.jitter is None else spec.jitter,
    }
    try:
        return CronMappingTrigger(timezone=zone, **spec.fields(), **dates)
    except ValueError as error:
        # APScheduler's message names the value, not the field: find the field ourselves.
        for name, value in spec.fields().items():
            try:
                CronTrigger(timezone=zone, **{name: value})
            except ValueError as field_error:
                raise ScheduleError(f"{field_error} (got {value!r})", name) from None
        raise ScheduleError(str(error)) from None


def crontab_trigger(line: str, zone: str, jitter: float | None = None) -> Trigger:
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


def upcoming(triggers: Sequence[Trigger], count: int, now: datetime) -> list[datetime]:
    """The next `count` fire times of triggers scheduled `now`, in order, without duplicates."""
    # The first as APScheduler asks when it adds a job: (None, now).
    firsts = []
    for trigger in triggers:
        if isinstance(trigger, RebootTrigger):
            continue  # no time of its own: it fires at the next start of the server
        first = _asked(trigger, None, now)
        if first is not None and first >= now:  # a date trigger offers its date once passed
            firsts.append((trigger, first))
    return listing(firsts, count)


def listing(jobs: Iterable[tuple[Trigger, datetime | None]], count: int) -> list[datetime]:
    """`count` fire times of triggers whose next fire is known, in order, without duplicates.

    From each next fire on, the same call the scheduler makes after firing it (firing.py:
    the answer depends on the fire time alone, not on when the scheduler woke).
    """
    times: dict[datetime, datetime] = {}
    for trigger, first in jobs:
        fire, listed = first, 0
        while fire is not None and listed < count:
            # (keyed in UTC: a time of a repeated hour never equals one of another zone)
            times.setdefault(fire.astimezone(UTC), fire)
            fire, listed = _asked(trigger, fire, fire), listed + 1
    return [times[key] for key in sorted(times)[:count]]


def _asked(trigger: Trigger, previous: datetime | None, now: datetime) -> datetime | None:
    try:
        fire: datetime | None = trigger.get_next_fire_time(previous, now)
    except OverflowError:  # the calendar ends at year 9999
        return None
    return fire


class CrontabTrigger(BaseTrigger):  # type: ignore[misc]
    """A crontab line, fired as Debian's cron fires it, also across DST changes.

    Wall-clock times with cron(8)'s rules (wallclock.py): a fixed-time line runs each time
    the clocks skip right after the jump, a time they repeat once; a line with `*` at the
    start of its minute or hour field runs by the new clock.
    """

    def __init__(self, line: str, zone: ZoneInfo, jitter: float | None = None):
        self._times = LineTimes(parse_line(line))
        self.line = line
        # Both are part of what identifies the schedule (fire_times.fingerprint).
        self.timezone = zone
        self.jitter = jitter
        self._key = random.getrandbits(64)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        return next_fire_time(
            self._times,
            self.timezone,
            previous_fire_time,
            now,
            jitter=self.jitter,
            key=self._key,
        )

    def __str__(self) -> str:
        return f"crontab[{self.line}]"


def fingerprint(trigger: object) -> str:
    """What identifies a schedule: its kind, its fields and its time zone."""
    # An interval without a start date of its own gets "now" from APScheduler each time
    # it is built; the scheduler notes the date the task set (or None) as `set_start_date`.
    start = getattr(trigger, "set_start_date", getattr(trigger, "start_date", ""))
    details = [getattr(trigger, "timezone", ""), start, getattr(trigger, "end_date", "")]
    kind = getattr(trigger, "kind", type(trigger).__name__)
    text = f"{kind}|{trigger}|{details}|{getattr(trigger, 'jitter', '')}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]
