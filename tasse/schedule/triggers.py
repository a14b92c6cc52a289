"""Schedules as APScheduler triggers: interval, cron mapping, date, crontab line, @reboot.

With `scheduler.py`, the only modules that import APScheduler. A trigger answers "when
next?"; `upcoming` lists that for the API and CLI with the same calls the scheduler makes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from tasse.errors import ScheduleError
from tasse.schedule.crontab import is_reboot, parse_crontab
from tasse.schedule.specs import CronSpec, DateSpec, IntervalSpec
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
        return CronTrigger(timezone=zone, **spec.fields(), **dates)
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


def fingerprint(trigger: object) -> str:
    """What identifies a schedule: its kind, its fields and its time zone."""
    # An interval without a start date of its own gets "now" from APScheduler each time
    # it is built; the scheduler notes the date the task set (or None) as `set_start_date`.
    start = getattr(trigger, "set_start_date", getattr(trigger, "start_date", ""))
    details = [getattr(trigger, "timezone", ""), start, getattr(trigger, "end_date", "")]
    text = f"{type(trigger).__name__}|{trigger}|{details}|{getattr(trigger, 'jitter', '')}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]
