"""The `trigger: cron` mapping, searched on wall-clock time and fired by cron(8)'s DST rules.

The fields keep APScheduler's meaning (day_of_week 0 = Monday, day AND weekday, `week`,
`last`, `2nd fri`, start and end dates): APScheduler parses them and its own field objects
say which values match. Only the search differs. APScheduler 3.11 steps through the fields
on aware times in absolute time and overshoots a skipped interval by its length
(`{hour: 0}` in Europe/Berlin after 2025-03-30 00:00+01 next fires on 04-01); here the same
steps run on naive wall-clock times, and wallclock.py turns the matching wall times into
instants exactly as for a crontab line: a mapping whose hour, minute or second field (given
or defaulted) starts with `*` is a wildcard job, every other one a fixed-time job.
"""

from __future__ import annotations

import bisect
import random
from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from tasse.schedule.firing import next_fire_time

_SECOND = timedelta(seconds=1)
#: Steps of the search before it gives up: a week or weekday field that cannot match the
#: days the others allow (`{month: 2, week: 43}`) steps a day at a time to year 9999, for
#: minutes (APScheduler's own search too). Any match comes within one 400-year cycle of the
#: calendar, about 146,000 days.
_STEPS_AT_MOST = 200_000


class CronMappingTrigger(CronTrigger):  # type: ignore[misc]
    """APScheduler's cron trigger, firing on wall-clock time with cron(8)'s rules at DST changes."""

    #: the name fingerprints use (fire_times): stored by earlier versions as APScheduler's
    #: CronTrigger, with the same fields, zone, dates and jitter, they still match
    kind = "CronTrigger"

    def __init__(self, **options: Any):
        super().__init__(**options)
        expressions = {field.name: str(field) for field in self.fields}
        self._wildcard = any(expressions[n].startswith("*") for n in ("hour", "minute", "second"))
        self._key = random.getrandbits(64)
        #: the wall times of the last skipped interval counted: its start, how far, which
        self._counted: tuple[datetime, datetime, list[datetime]] | None = None

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        return next_fire_time(
            self,
            self.timezone,
            previous_fire_time,
            now,
            start=self.start_date,
            end=self.end_date,
            jitter=self.jitter,
            key=self._key,
        )

    @property
    def wildcard(self) -> bool:
        """A wildcard job: its hour, minute or second field starts with `*`."""
        return self._wildcard

    def next_wall(self, wall: datetime) -> datetime | None:
        """The first wall time at or after `wall` (naive, whole seconds) the fields match."""
        # APScheduler's own search (CronTrigger.get_next_fire_time), on a naive time.
        fieldnum, date, steps = 0, wall, 0
        while 0 <= fieldnum < len(self.fields) and steps < _STEPS_AT_MOST:
            field, steps = self.fields[fieldnum], steps + 1
            current, following = field.get_value(date), field.get_next_value(date)
            if following is None:
                date, fieldnum = self._increment_field_value(date, fieldnum - 1)
            elif following > current and field.REAL:
                date = self._set_field_value(date, fieldnum, following)
                fieldnum += 1
            elif following > current:
                date, fieldnum = self._increment_field_value(date, fieldnum)
            else:
                fieldnum += 1
        return date if fieldnum == len(self.fields) else None

    def count(self, start: datetime, end: datetime) -> int:
        """How many wall times in [start, end) the fields match (a skipped interval)."""
        # Called for each catch-up of one interval, with the same start: list its times once.
        counted = self._counted
        if counted is None or counted[0] != start:
            counted = (start, start, [])
        _, reached, walls = counted
        more = []  # (a new list, not appended to: the cache may be read on another thread)
        wall = self.next_wall(reached) if reached < end else None
        while wall is not None and wall < end:
            more.append(wall)
            wall = self.next_wall(wall + _SECOND)
        if more or end > reached:
            walls = walls + more
            self._counted = (start, max(reached, end), walls)
        return bisect.bisect_left(walls, end)

    def _set_field_value(self, dateval: datetime, fieldnum: int, new_value: int) -> datetime:
        # APScheduler's, without the time zone: the search runs on the wall clock.
        values: dict[str, int] = {}
        for index, field in enumerate(self.fields):
            if field.REAL:
                if index < fieldnum:
                    values[field.name] = field.get_value(dateval)
                elif index > fieldnum:
                    values[field.name] = field.get_min(dateval)
                else:
                    values[field.name] = new_value
        year, month, day = values["year"], values["month"], values["day"]
        return datetime(year, month, day, values["hour"], values["minute"], values["second"])
