"""The `trigger: cron` mapping keeps APScheduler's fields and fires by cron(8)'s DST rules.

APScheduler 3.11's CronTrigger steps across a skipped interval in absolute time and
overshoots; the mapping trigger searches on wall-clock time and turns the wall times into
instants as for a crontab line. Checked here against the replay of Debian's cron
(cron_reference.py), with the mapping's own fields deciding which wall times match and its
hour, minute and second fields whether it is a wildcard job.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from tasse.errors import ScheduleError
from tasse.schedule.mapping import CronMappingTrigger
from tasse.schedule.specs import CronSpec
from tasse.schedule.triggers import fingerprint, make_trigger, upcoming
from tests.schedule.cron_reference import cron_loop, job_runs
from tests.schedule.random_lines import random_field
from tests.schedule.test_wallclock import around, focus, interval, scheduled_day
from tests.schedule.zones import Transition, dst_zones, transitions

BERLIN = ZoneInfo("Europe/Berlin")
MICRO = timedelta(microseconds=1)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # APScheduler's: 0 = Monday


def mapping(zone: ZoneInfo = BERLIN, **fields: Any) -> CronMappingTrigger:
    """The trigger task.yaml's `{trigger: cron, …}` becomes (through make_trigger)."""
    trigger = make_trigger(CronSpec(trigger="cron", **fields), zone)
    assert isinstance(trigger, CronMappingTrigger)
    return trigger


def fires_after(trigger: CronMappingTrigger, start: datetime, end: datetime) -> list[datetime]:
    """Every fire strictly after `start` and before `end`, in UTC, as the scheduler chains them."""
    found: list[datetime] = []
    fire = trigger.get_next_fire_time(None, start + MICRO)
    while fire is not None and fire < end:
        found.append(fire.astimezone(UTC))
        fire = trigger.get_next_fire_time(fire, fire)
    return found


def local(times: list[datetime], zone: ZoneInfo = BERLIN) -> list[str]:
    return [t.astimezone(zone).isoformat() for t in times]


# --- the cases of issue 11 -------------------------------------------------------------------


def test_no_day_is_lost_after_spring_forward() -> None:
    after = datetime(2025, 3, 30, 0, 0, tzinfo=BERLIN)
    # APScheduler's own trigger overshoots the skipped hour by an hour, and so a day:
    overshot = CronTrigger(hour=0, timezone=BERLIN).get_next_fire_time(after, after)
    assert overshot.isoformat() == "2025-04-01T00:00:00+02:00"
    trigger = mapping(hour=0)
    assert local(fires_after(trigger, after, after + timedelta(days=2, hours=1))) == [
        "2025-03-31T00:00:00+02:00",
        "2025-04-01T00:00:00+02:00",
    ]


def test_monthly_and_weekly_mappings_never_skip() -> None:
    start = datetime(2025, 1, 15, tzinfo=BERLIN)
    monthly = fires_after(mapping(day=1), start, datetime(2027, 1, 2, tzinfo=BERLIN))
    months = [(f.astimezone(BERLIN).year, f.astimezone(BERLIN).month) for f in monthly]
    assert months == [*[(y, m) for y in (2025, 2026) for m in range(1, 13)][1:], (2027, 1)]
    # day_of_week 0 is Monday, as APScheduler counts
    weekly = fires_after(mapping(day_of_week=0), start, datetime(2026, 1, 1, tzinfo=BERLIN))
    assert {f.astimezone(BERLIN).strftime("%A %H:%M") for f in weekly} == {"Monday 00:00"}
    assert len(weekly) == 50


def test_a_fixed_time_mapping_catches_up_each_skipped_time() -> None:
    trigger = mapping(hour=2, minute="0,30")
    start = datetime(2025, 3, 29, 12, tzinfo=BERLIN)
    assert local(fires_after(trigger, start, start + timedelta(days=2))) == [
        "2025-03-30T03:00:00+02:00",
        "2025-03-30T03:00:00.000001+02:00",
        "2025-03-31T02:00:00+02:00",
        "2025-03-31T02:30:00+02:00",
    ]
    # in a repeated hour, once (the first pass)
    autumn = datetime(2025, 10, 25, 12, tzinfo=BERLIN)
    assert local(fires_after(mapping(hour=2, minute=30), autumn, autumn + timedelta(days=1))) == [
        "2025-10-26T02:30:00+02:00",
    ]


def test_a_wildcard_mapping_runs_by_the_new_clock() -> None:
    # hour starts with `*`: no catch-up of the skipped hour, both passes of a repeated one
    trigger = mapping(hour="*/2")
    spring = datetime(2025, 3, 29, 23, tzinfo=BERLIN)
    assert local(fires_after(trigger, spring, spring + timedelta(hours=6))) == [
        "2025-03-30T00:00:00+01:00",
        "2025-03-30T04:00:00+02:00",
    ]
    autumn = datetime(2025, 10, 25, 23, tzinfo=BERLIN)
    assert local(fires_after(trigger, autumn, autumn + timedelta(hours=6))) == [
        "2025-10-26T00:00:00+02:00",
        "2025-10-26T02:00:00+02:00",
        "2025-10-26T02:00:00+01:00",
        "2025-10-26T04:00:00+01:00",
    ]
    # only minute given: hour defaults to `*` (a wildcard, like `30 * * * *`)
    assert local(upcoming([mapping(minute=30)], 3, datetime(2025, 10, 26, 2, tzinfo=BERLIN))) == [
        "2025-10-26T02:30:00+02:00",
        "2025-10-26T02:30:00+01:00",
        "2025-10-26T03:30:00+01:00",
    ]


def test_week_last_and_start_and_end_dates_keep_their_meaning() -> None:
    zone = ZoneInfo("America/New_York")
    week = mapping(zone, year=2026, week=10, hour=2, minute=30)  # 2026-03-08 springs forward
    start = datetime(2026, 1, 1, tzinfo=zone)
    assert local(fires_after(week, start, start + timedelta(days=90)), zone) == [
        "2026-03-02T02:30:00-05:00",
        "2026-03-03T02:30:00-05:00",
        "2026-03-04T02:30:00-05:00",
        "2026-03-05T02:30:00-05:00",
        "2026-03-06T02:30:00-05:00",
        "2026-03-07T02:30:00-05:00",
        "2026-03-08T03:00:00-04:00",  # 02:30 did not exist that night
    ]
    last_sunday = mapping(day="last sun", hour=2, minute=30)  # when Berlin springs forward
    start = datetime(2025, 2, 1, tzinfo=BERLIN)
    assert local(fires_after(last_sunday, start, datetime(2025, 5, 1, tzinfo=BERLIN))) == [
        "2025-02-23T02:30:00+01:00",
        "2025-03-30T03:00:00+02:00",
        "2025-04-27T02:30:00+02:00",
    ]
    dated = mapping(hour=0, start_date="2025-03-30", end_date="2025-04-01 00:00:00")
    assert local(upcoming([dated], 5, datetime(2025, 1, 1, tzinfo=UTC))) == [
        "2025-03-30T00:00:00+01:00",
        "2025-03-31T00:00:00+02:00",
        "2025-04-01T00:00:00+02:00",
    ]


def test_jitter_stays_before_the_next_fire() -> None:
    trigger = mapping(hour=2, minute="0,30", jitter=3600)
    fires = upcoming([trigger], 6, datetime(2025, 3, 29, 12, tzinfo=BERLIN))
    assert fires == sorted(fires)
    # the catch-ups keep their order: the first is not delayed past the second
    assert fires[0].astimezone(UTC) == datetime(2025, 3, 30, 1, tzinfo=UTC)
    assert fires[1].astimezone(UTC) > fires[0].astimezone(UTC)
    assert fires[2].astimezone(BERLIN).strftime("%m-%d %H") == "03-31 02"
    # asked again, the same delays: what is listed is what fires
    assert upcoming([trigger], 6, datetime(2025, 3, 29, 12, tzinfo=BERLIN)) == fires


def test_fingerprints_are_those_apscheduler_s_trigger_had() -> None:
    # fire times stored by earlier versions (fire_times) still belong to the schedule
    options: dict[str, Any] = {"hour": "6", "minute": "30", "timezone": BERLIN, "jitter": 5}
    assert fingerprint(CronMappingTrigger(**options)) == fingerprint(CronTrigger(**options))


# --- against the replay of Debian's cron -----------------------------------------------------


def matcher(trigger: CronMappingTrigger) -> Any:
    """The mapping's own fields decide whether a wall time matches (APScheduler's code)."""
    return lambda wall: all(f.get_next_value(wall) == f.get_value(wall) for f in trigger.fields)


def random_mapping(rng: random.Random, at: datetime, seconds: bool) -> dict[str, str]:
    """A mapping in APScheduler's syntax, its fields often holding the wall time `at`."""
    options = {"hour": random_field(rng, 0, 23, at.hour)}
    if seconds or rng.random() < 0.8:
        options["minute"] = random_field(rng, 0, 59, at.minute)
    if seconds:
        options["second"] = random_field(rng, 0, 59, at.second)
    weekday = WEEKDAYS[at.weekday()]
    kind = rng.random()
    if kind < 0.15:
        options["day"] = random_field(rng, 1, 31, at.day, star=0.3)
    elif kind < 0.25:
        nth = ("1st", "2nd", "3rd", "4th", "5th")[(at.day - 1) // 7]
        options["day"] = rng.choice(["last", f"{nth} {weekday}", f"last {weekday}"])
    # (`last sun` with `mon-fri` names no day: a mapping that never fires, slowly)
    if rng.random() < 0.3 and not 0.15 <= kind < 0.25:
        options["day_of_week"] = rng.choice(
            [random_field(rng, 0, 6, at.weekday(), star=0.3), weekday, "mon-fri", "sat,sun"]
        )
    if rng.random() < 0.1:
        options["month"] = random_field(rng, 1, 12, at.month, star=0.3)
    elif "day" not in options and rng.random() < 0.1:
        # (with a month or a day as well, a week easily names no date at all)
        options["week"] = str(at.isocalendar()[1])
    return options


def compare(
    trigger: CronMappingTrigger, change: Transition, hours: float, rng: random.Random
) -> int:
    """The trigger's fires around a change are the replay's; so is its answer from any moment."""
    zone = ZoneInfo(change.zone)
    unit = 60 if str(trigger.fields[-1]) == "0" else 1
    start = change.at - timedelta(seconds=rng.randrange(600, int(hours * 3600)) // 60 * 60)
    end = change.at + timedelta(seconds=rng.randrange(600, int(hours * 3600)) // 60 * 60)
    lookups = cron_loop(zone, start, end + timedelta(minutes=2), unit)
    replay = [run for run in job_runs(matcher(trigger), trigger.wildcard, lookups) if run < end]
    assert fires_after(trigger, start, end) == replay, (trigger, change)
    for _ in range(3):
        moment = start + (end - start) * rng.random()
        if replay and rng.random() < 0.3:
            moment = rng.choice(replay) + rng.choice((-MICRO, timedelta(0), MICRO))
        index = bisect.bisect_right(replay, moment)
        got = trigger.get_next_fire_time(moment, moment)
        if index == len(replay):
            assert got is None or got >= end, (trigger, moment)
        else:
            assert got is not None, (trigger, moment)
            assert got.astimezone(UTC) == replay[index], (trigger, moment)
    return len(replay)


def random_trigger(rng: random.Random, change: Transition, seconds: bool) -> CronMappingTrigger:
    at = focus(change, rng)
    while True:
        try:
            return mapping(ZoneInfo(change.zone), **random_mapping(rng, at, seconds))
        except ScheduleError:
            continue  # APScheduler refuses some of these (a step longer than its range)


def every_change() -> list[Transition]:
    return [change for name in dst_zones() for change in transitions(name)]


def test_random_mappings_run_as_debian_would_at_clock_changes() -> None:
    rng = random.Random(11)
    fires = 0
    for change in rng.sample(every_change(), 300):
        fires += compare(random_trigger(rng, change, seconds=False), change, 8, rng)
    assert fires > 8_000


def test_random_mappings_with_seconds_run_as_debian_would() -> None:
    rng = random.Random(12)
    for change in rng.sample(every_change(), 30):
        compare(random_trigger(rng, change, seconds=True), change, 0.5, rng)


@pytest.mark.timeout(120)
def test_a_daily_mapping_fires_once_every_day_in_every_zone() -> None:
    for name in dst_zones():
        zone = ZoneInfo(name)
        for change in transitions(name)[:4]:  # (2025 and 2026: the rules repeat)
            start, end = around(change, 2)
            wall, length = interval(change)
            inside = wall + timedelta(seconds=length // 2)
            for hour, minute in {(inside.hour, inside.minute), (0, 0)}:
                fires = fires_after(mapping(zone, hour=hour, minute=minute), start, end)
                days = Counter(scheduled_day(fire, zone, hour, minute) for fire in fires)
                first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
                inside_days = [d for d in days if first < d < last]
                assert len(inside_days) == (last - first).days - 1, (name, change, hour, minute)
                assert all(days[d] == 1 for d in inside_days), (name, change, days)
