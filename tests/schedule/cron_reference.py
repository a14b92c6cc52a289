"""Debian's cron replayed on a simulated clock: the reference for wallclock.next_fire.

Written to be read beside cron.c of Debian's cron 3.0pl1 (`main`'s loop, `find_jobs`), plainly
and slowly. Real time advances in UTC, one minute at a time (one second for lines with a seconds
field, our extension: cron's minute clock becomes a second clock and its thresholds stay the
same lengths of time). At each step the wall clock is derived from the zone, as `set_time` does
with GMToff, and cron's loop runs: it compares the wall clock (`timeRunning`) with the time it
expected (`virtualTime`), classifies the difference into cron.c's cases and looks up the jobs
(`find_jobs(time, doWild, doNonWild)`).

What cron.c leaves to the machine, and this replay fixes:
- cron wakes a second after the minute; a run here is listed at the minute itself;
- in a catch-up loop cron runs each minute's jobs before it looks up the next minute's: the
  runs of one line at one wake-up are listed one microsecond apart, in cron's order, from the
  wake-up on (the instants wallclock.py documents);
- cron sleeps 10 s after a minute that ran jobs, and may leave a long catch-up loop when the
  minute changes meanwhile: not replayed (it depends on the machine's load, not the line);
- cron re-reads GMToff only when tm_isdst changes; here it is read at every step (no zone with
  DST changes its offset without changing tm_isdst in 2025-2030).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from tasse.schedule.cronline import CronLine

MINUTE_COUNT = 60  # cron.h
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NAIVE_EPOCH = datetime(1970, 1, 1)


class Lookup(NamedTuple):
    """One call of find_jobs: a virtual time, the kinds of job wanted, and when cron woke."""

    wall: datetime  # the virtual time as a wall-clock time (gmtime of the local seconds)
    do_wild: bool
    do_non_wild: bool
    wake: int  # the real (UTC) second cron woke at


def clock_unit(line: CronLine) -> int:
    """Seconds per clock tick: 60 (cron's minutes), 1 for a line with a seconds field."""
    text = line.text.strip()
    return 1 if not text.startswith("@") and len(text.split()) >= 6 else 60


def cron_loop(zone: ZoneInfo, start: datetime, end: datetime, unit: int) -> list[Lookup]:
    """Every find_jobs call cron.c's main loop makes from `start` (in sync) to `end`."""
    real = int(start.timestamp())
    assert real % unit == 0, "start on a whole clock unit"
    small, large = 5 * 60 // unit, 3 * MINUTE_COUNT * 60 // unit
    virtual = running = wall_tick(zone, real, unit)
    lookups: list[Lookup] = []
    last = end.timestamp()

    def find(tick: int, do_wild: bool, do_non_wild: bool, wake: int) -> None:
        wall = NAIVE_EPOCH + timedelta(seconds=tick * unit)
        lookups.append(Lookup(wall, do_wild, do_non_wild, wake))

    while real < last:
        real += unit
        now = wall_tick(zone, real, unit)
        if now == running:
            continue  # "wait for the time (in minutes) to change"
        running = now
        diff = running - virtual
        if diff == 1:
            virtual = running
            find(virtual, True, True, real)
        elif 0 < diff <= small:
            # case 1: woke late: run every job for each virtual minute until caught up
            while virtual < running:
                virtual += 1
                find(virtual, True, True, real)
        elif small < diff <= large:
            # case 2: DST begins: wildcard jobs by the new time, then fixed-time jobs for
            # each minute missed (up to and including the new minute)
            find(running, True, False, real)
            while virtual < running:
                virtual += 1
                find(virtual, False, True, real)
        elif -large < diff <= 0:
            # case 3 in cron.c's comments: DST ends: wildcard jobs only; virtual time waits
            find(running, True, False, real)
        else:
            # the clock jumped a lot: take the new time and run everything
            virtual = running
            find(running, True, True, real)
    return lookups


def wall_tick(zone: ZoneInfo, real: int, unit: int) -> int:
    """set_time's clockTime: the wall clock as units since the epoch (time + GMToff)."""
    offset = datetime.fromtimestamp(real, zone).utcoffset()
    assert offset is not None
    seconds = int(offset.total_seconds())
    assert seconds % unit == 0, "offsets in whole clock units, as in every zone since 1980"
    return (real + seconds) // unit


def debian_runs(line: CronLine, lookups: list[Lookup]) -> list[datetime]:
    """The instants (UTC) the line runs at, for cron_loop's lookups."""
    wild = line.second_star or line.minute_star or line.hour_star  # MIN_STAR | HR_STAR
    return job_runs(lambda wall: matches(line, wall), wild, lookups)


def job_runs(
    matching: Callable[[datetime], bool], wild: bool, lookups: list[Lookup]
) -> list[datetime]:
    """The instants (UTC) a job runs at: one that matches these wall times, wildcard or not."""
    runs: list[datetime] = []
    last_wake, earlier = None, 0
    for lookup in lookups:
        if not matching(lookup.wall):
            continue
        if not ((lookup.do_non_wild and not wild) or (lookup.do_wild and wild)):
            continue
        earlier = earlier + 1 if lookup.wake == last_wake else 0
        last_wake = lookup.wake
        runs.append(EPOCH + timedelta(seconds=lookup.wake, microseconds=earlier))
    return runs


def matches(line: CronLine, wall: datetime) -> bool:
    """find_jobs' test of a job against a wall-clock time (plus seconds and years)."""
    dom, dow = wall.day, wall.isoweekday() % 7
    if line.dom_star or line.dow_star:
        day = dow in line.weekdays and dom in line.days
    else:
        day = dow in line.weekdays or dom in line.days
    return (
        wall.second in line.seconds
        and wall.minute in line.minutes
        and wall.hour in line.hours
        and wall.month in line.months
        and (line.years is None or wall.year in line.years)
        and day
    )


def reference_runs(
    line: CronLine, zone: ZoneInfo, start: datetime, end: datetime
) -> list[datetime]:
    """The runs of one line strictly after `start`, up to the last wake-up before `end`."""
    unit = clock_unit(line)
    return debian_runs(line, cron_loop(zone, start, end, unit))
