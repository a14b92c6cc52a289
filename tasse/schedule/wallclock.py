"""When a crontab line fires: on wall-clock time, with Debian cron's rules at clock changes.

Debian's cron wakes every minute and compares the wall clock with the minute it expected
(cron.c, main). At a jump forward of 5 minutes to 3 hours (spring forward) it runs the jobs of
the new minute that have a `*` at the start of their minute or hour field (wildcard jobs), then
every other job (fixed-time) once for each skipped minute, in order. At a jump back of up to 3
hours (fall back) it runs only wildcard jobs until the clock is back where it was. Smaller jumps
forward run every job for each skipped minute; larger jumps either way are clock corrections and
simply use the new time.

Here: the skipped times a line catches up fire right after the jump, in order, one microsecond
apart from the jump itself on (in Berlin `30 2 * * *` fires at 03:00:00, `0,30 2 * * *` at
03:00:00 and 03:00:00.000001), and the line's own time at the jump, if it has one, one
microsecond after the last of them: distinct instants, in cron's order. Seconds fields extend
the rule: a `*` at the start of the seconds, minute or hour field makes a wildcard line.

The rules need only which wall-clock times a schedule names (`WallTimes`): a crontab line
(`LineTimes`, here) and a `trigger: cron` mapping (schedule/mapping.py) fire by the same code.

Fires come back in `zone`. Compare them in UTC: Python never finds a time of a repeated hour
equal (==) to one in another zone (PEP 495); ordering and arithmetic are not affected.
"""

from __future__ import annotations

import bisect
import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from tasse.schedule.cronline import CronLine, is_reboot, parse_line

__all__ = [
    "CronLine",
    "LineTimes",
    "WallTimes",
    "is_reboot",
    "next_fire",
    "next_fire_of",
    "parse_line",
]

#: Debian's cron.c: a jump forward below 5 minutes runs every job for each skipped minute...
SMALL_JUMP = 5 * 60
#: ...and a jump of 3 hours or more (3*MINUTE_COUNT), either way, is a clock correction.
LARGE_JUMP = 3 * 60 * 60
#: Calendar search stops here, short of datetime's limit.
LAST_YEAR = 9998

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)
_MICRO = timedelta(microseconds=1)
_DAY = timedelta(days=1)
_US = 1_000_000
_MONTH_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class WallTimes(Protocol):
    """The wall-clock times a schedule names, whatever its syntax, and its kind of job."""

    @property
    def wildcard(self) -> bool:
        """cron(8)'s wildcard job: runs by the new clock at a change, catches nothing up."""
        ...

    def next_wall(self, wall: datetime) -> datetime | None:
        """The first named wall time (naive, whole seconds) at or after `wall`."""
        ...

    def count(self, start: datetime, end: datetime) -> int:
        """How many named wall times lie in [start, end) (a skipped interval: under 3 hours)."""
        ...


@dataclass(frozen=True, slots=True)
class LineTimes:
    """The wall times of a crontab line."""

    line: CronLine

    @property
    def wildcard(self) -> bool:
        """cron(8)'s wildcard job (a time field starts with `*`, or @hourly)."""
        return self.line.wildcard

    def next_wall(self, wall: datetime) -> datetime | None:
        """The first wall time at or after `wall` that the line matches."""
        if not self.line.some_day_matches:
            return None  # (the search would run to the end of the calendar)
        return _next_wall(self.line, wall)

    def count(self, start: datetime, end: datetime) -> int:
        """How many wall times in [start, end) the line matches."""
        return _count(self.line, start, end)


def next_fire(line: CronLine, after: datetime, zone: ZoneInfo) -> datetime | None:
    """The first instant strictly after `after` (aware) at which Debian's cron runs the line."""
    return next_fire_of(LineTimes(line), after, zone)


def next_fire_of(times: WallTimes, after: datetime, zone: ZoneInfo) -> datetime | None:
    """The first instant strictly after `after` (aware) at which cron's rules run `times`."""
    if after.utcoffset() is None:
        raise ValueError(f"after must be an aware datetime, not {after!r}")
    found = _first_fire(times, zone, (after - _EPOCH) // _MICRO)
    return None if found is None else (_EPOCH + found * _MICRO).astimezone(zone)


def _first_fire(times: WallTimes, zone: ZoneInfo, after: int) -> int | None:
    second = after // _US
    local = datetime.fromtimestamp(second, zone)
    offset = _offset(local)
    if _offset(local.replace(fold=1 - local.fold)) != offset:
        return _from_repeat(times, zone, local.replace(tzinfo=None, fold=0), after)
    # Right after a jump forward, the catch-ups of the skipped times may still be ahead.
    wall = local.replace(tzinfo=None)
    shift = offset - _offset_at(zone, second - 1)
    # (otherwise the wall time of `after` itself is past: it ran at or before `after`)
    start = wall - shift * _SECOND if shift > 0 else wall + _SECOND
    return _scan(times, zone, start, after)


def _from_repeat(times: WallTimes, zone: ZoneInfo, wall: datetime, after: int) -> int | None:
    """The next fire when `after` lies in a repeated interval (first or second pass)."""
    early, late = _wall_offsets(zone, wall)
    local = _seconds(wall)
    jump = _transition(zone, local - early, local - late)
    end = _naive(jump + early)
    if after // _US < jump:
        found = _scan(times, zone, wall, after, stop=end)
        if found is not None:
            return found
    if _fires_twice(times, early - late):
        # The second pass: wall time again from the start of the repeated interval.
        lowest = max(jump + late, (after + late * _US) // _US + 1)
        again = times.next_wall(_naive(lowest))
        if again is not None and again < end:
            return (_seconds(again) - late) * _US
    return _scan(times, zone, end, after)


def _scan(
    times: WallTimes, zone: ZoneInfo, start: datetime, after: int, stop: datetime | None = None
) -> int | None:
    """The first fire after `after` of the wall times from `start` (before `stop`)."""
    wall = times.next_wall(start)
    while wall is not None and (stop is None or wall < stop):
        fire = _fire(times, zone, wall)
        if fire is not None and fire > after:
            return fire
        wall = times.next_wall(_past_gap(zone, wall) if fire is None else wall + _SECOND)
    return None


def _fire(times: WallTimes, zone: ZoneInfo, wall: datetime) -> int | None:
    """The instant (µs since the epoch) a wall time runs at, first pass; None if never."""
    early, late = _wall_offsets(zone, wall)
    local = _seconds(wall)
    if early >= late:
        return _after_gap(times, zone, wall, local - early, early)
    if not _catches_up(times, late - early):
        return None
    jump = _transition(zone, local - late, local - early)
    return jump * _US + times.count(_naive(jump + early), wall)


def _after_gap(times: WallTimes, zone: ZoneInfo, wall: datetime, instant: int, offset: int) -> int:
    """A wall time's instant; moved after the catch-ups when it is the first one past a gap."""
    shift = offset - _offset_at(zone, instant - 1)
    if shift <= 0 or not _catches_up(times, shift):
        return instant * _US
    return instant * _US + times.count(wall - shift * _SECOND, wall)


def _count(line: CronLine, start: datetime, end: datetime) -> int:
    """How many wall times in [start, end) the line matches (a gap: within a day or two)."""
    total, day = 0, start.date()
    while day <= end.date():
        if _next_day(line, day) == day:
            low = start.time() if day == start.date() else None
            high = end.time() if day == end.date() else None
            before = 0 if low is None else _times_before(line, low)
            total += _times_before(line, high) - before
        day += _DAY
    return total


def _times_before(line: CronLine, moment: time | None) -> int:
    """How many of the line's times of day come before `moment` (None: the end of the day)."""
    hours, minutes, seconds = line.sorted_hours, line.sorted_minutes, line.sorted_seconds
    if moment is None:
        return len(hours) * len(minutes) * len(seconds)
    count = bisect.bisect_left(hours, moment.hour) * len(minutes) * len(seconds)
    if moment.hour in line.hours:
        count += bisect.bisect_left(minutes, moment.minute) * len(seconds)
        if moment.minute in line.minutes:
            count += bisect.bisect_left(seconds, moment.second)
    return count


def _catches_up(times: WallTimes, shift: int) -> bool:
    """Whether a schedule runs its skipped times after a jump forward of `shift` seconds."""
    if shift < SMALL_JUMP:
        return True
    return shift < LARGE_JUMP and not times.wildcard


def _fires_twice(times: WallTimes, back: int) -> bool:
    """Whether a schedule runs again in a wall-clock interval repeated after a jump back."""
    return times.wildcard or back > LARGE_JUMP


def _past_gap(zone: ZoneInfo, wall: datetime) -> datetime:
    """The first wall time after the skipped interval that holds `wall`."""
    early, late = _wall_offsets(zone, wall)
    local = _seconds(wall)
    return _naive(_transition(zone, local - late, local - early) + late)


def _transition(zone: ZoneInfo, low: int, high: int) -> int:
    """The first second in (low, high] whose UTC offset differs from the one at `low`."""
    before = _offset_at(zone, low)
    while high - low > 1:
        middle = (low + high) // 2
        if _offset_at(zone, middle) == before:
            low = middle
        else:
            high = middle
    return high


def _offset_at(zone: ZoneInfo, second: int) -> int:
    return _offset(datetime.fromtimestamp(second, zone))


def _wall_offsets(zone: ZoneInfo, wall: datetime) -> tuple[int, int]:
    """The offsets of a wall time with fold 0 and 1: equal unless skipped or repeated."""
    aware = wall.replace(tzinfo=zone)
    return _offset(aware), _offset(aware.replace(fold=1))


def _offset(moment: datetime) -> int:
    offset = moment.utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset // _SECOND


def _seconds(wall: datetime) -> int:
    return (wall - _NAIVE_EPOCH) // _SECOND


def _naive(local: int) -> datetime:
    return _NAIVE_EPOCH + local * _SECOND


def _next_wall(line: CronLine, wall: datetime) -> datetime | None:
    """The first wall time at or after `wall` (whole seconds) that the line matches."""
    day, start = wall.date(), wall.time()
    while (found := _next_day(line, day)) is not None:
        if found != day:
            start = time()
        moment = _next_time(line, start)
        if moment is not None:
            return datetime.combine(found, moment)
        day, start = found + _DAY, time()
    return None


def _next_time(line: CronLine, start: time) -> time | None:
    """The first time of day at or after `start` that the line's time fields match."""
    hours, minutes, seconds = line.sorted_hours, line.sorted_minutes, line.sorted_seconds
    for hour in hours[bisect.bisect_left(hours, start.hour) :]:
        if hour > start.hour:
            return time(hour, minutes[0], seconds[0])
        for minute in minutes[bisect.bisect_left(minutes, start.minute) :]:
            if minute > start.minute:
                return time(hour, minute, seconds[0])
            index = bisect.bisect_left(seconds, start.second)
            if index < len(seconds):
                return time(hour, minute, seconds[index])
    return None


def _next_day(line: CronLine, day: date) -> date | None:
    """The first day at or after `day` that the line's day, month and year fields match."""
    while day.year <= LAST_YEAR:
        year = _next_year(line, day.year)
        if year is None:
            return None
        if year != day.year:
            day = date(year, 1, 1)
        if day.month in line.months:
            found = _day_in_month(line, day)
            if found is not None:
                return found
        day = date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)
    return None


def _next_year(line: CronLine, year: int) -> int | None:
    if line.sorted_years is None:
        return year if year <= LAST_YEAR else None
    index = bisect.bisect_left(line.sorted_years, year)
    return line.sorted_years[index] if index < len(line.sorted_years) else None


def _day_in_month(line: CronLine, day: date) -> date | None:
    """The first day from `day` to the end of its month that the day fields match."""
    last = _MONTH_DAYS[day.month] if day.month != 2 else 29 if calendar.isleap(day.year) else 28
    if line.dom_star or line.dow_star:
        # Both fields must match: only the allowed days of the month need a look.
        start = bisect.bisect_left(line.sorted_days, day.day)
        candidates: Iterable[int] = line.sorted_days[start:]
    else:
        candidates = range(day.day, last + 1)
    for number in candidates:
        if number > last:
            return None
        found = day.replace(day=number)
        if _day_matches(line, found):
            return found
    return None


def _day_matches(line: CronLine, day: date) -> bool:
    in_month = day.day in line.days
    in_week = day.isoweekday() % 7 in line.weekdays
    # Debian's find_jobs: with either field starting with `*`, both must match; else either.
    if line.dom_star or line.dow_star:
        return in_month and in_week
    return in_month or in_week
