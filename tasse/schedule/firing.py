"""A wall-clock trigger's next fire time, asked the way APScheduler asks it, with jitter.

APScheduler 3.11 asks a trigger `get_next_fire_time(previous_fire_time, now)`: with None when
it adds a job, then after each fire with that fire time (and the moment it woke, late or
not). Listings (`GET /tasks/{name}/next`, `tasse next`) chain the same question from fire
to fire, so once a previous fire time is given the answer here depends on it alone, never
on `now`: what is listed is what fires.

Jitter delays a fire by up to `jitter` seconds, but never up to the schedule's next time:
fires are never merged, reordered or lost (a clock change's catch-ups, a microsecond apart,
keep their order), and the fire after a delayed one is simply the schedule's next. The delay
is drawn from the trigger's own random key and the fire time, so asking twice gives the
same answer, and two tasks on the same schedule still spread apart.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tasse.schedule.wallclock import WallTimes, next_fire_of

_MICRO = timedelta(microseconds=1)


def next_fire_time(
    times: WallTimes,
    zone: ZoneInfo,
    previous: datetime | None,
    now: datetime,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    jitter: float | None = None,
    key: int = 0,
) -> datetime | None:
    """The fire after `previous`, or the first at or after `now` (and `start`), by `end`."""
    if previous is not None:
        after = previous
    else:
        # At or after now, as APScheduler's own triggers answer a job being added.
        after = (max(now, start) if start is not None else now) - _MICRO
    if after.utcoffset() is None:
        raise ValueError(f"fire times are aware datetimes, not {after!r}")
    try:
        fire = next_fire_of(times, after, zone)
        if fire is None or (end is not None and fire > end):
            return None
        if jitter:
            fire = _delayed(times, zone, fire, jitter, key)
    except (OverflowError, ValueError):
        # datetime ends in year 9999 ("year 10000 is out of range"), which a mapping may
        # name: nothing fires beyond it. (Raised into APScheduler, it would stop every
        # job's wake-ups, not just this one.)
        return None
    return min(fire, end) if end is not None else fire


def _delayed(times: WallTimes, zone: ZoneInfo, fire: datetime, jitter: float, key: int) -> datetime:
    """`fire` plus a delay of up to `jitter` seconds that stays before the next fire."""
    stamp = (fire - datetime(1970, 1, 1, tzinfo=UTC)) // _MICRO
    digest = hashlib.blake2b(f"{key}:{stamp}".encode(), digest_size=8).digest()
    delay = timedelta(seconds=jitter * int.from_bytes(digest) / 2**64)
    following = next_fire_of(times, fire, zone)
    if following is not None:
        # (in UTC: arithmetic on times of one zone is wall-clock arithmetic)
        delay = min(delay, following.astimezone(UTC) - fire.astimezone(UTC) - _MICRO)
    return (fire.astimezone(UTC) + delay).astimezone(zone)
