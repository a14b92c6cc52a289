"""next_fire runs a crontab line when Debian's cron would, across every clock change.

Known cases (issue 11, cron(8), cronsim's and croniter's DST tests) are checked against both
next_fire and the reference replay of cron.c; then thousands of random lines are compared with
the replay in every zone with DST, around every change of 2025-2030.
"""

from __future__ import annotations

import bisect
import calendar
import itertools
import random
import statistics
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from zoneinfo import ZoneInfo

import pytest

from tasse.schedule.wallclock import CronLine, next_fire, parse_line
from tests.schedule.cron_reference import (
    Lookup,
    clock_unit,
    cron_loop,
    debian_runs,
    reference_runs,
)
from tests.schedule.random_lines import random_line
from tests.schedule.zones import Transition, dst_zones, made_up_zone, transitions

MICRO = timedelta(microseconds=1)
MONTHS = [(year, month) for year in range(2025, 2031) for month in range(1, 13)]


def fire_list(line: CronLine, zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Every fire strictly after `start` and before `end`, in UTC, by iterating next_fire."""
    found: list[datetime] = []
    moment = next_fire(line, start, zone)
    while moment is not None and moment < end:
        found.append(moment.astimezone(UTC))
        moment = next_fire(line, moment, zone)
    return found


def local_fires(text: str, zone: str, start: str, count: int, replay: bool = True) -> list[str]:
    """The next `count` fires after `start` (local ISO time) as local ISO times; the reference
    replay of Debian's cron must list the same (when `replay`: it takes a while for months)."""
    line, tz = parse_line(text), ZoneInfo(zone)
    begin = datetime.fromisoformat(start).replace(tzinfo=tz)
    found: list[datetime] = []
    moment = next_fire(line, begin, tz)
    while moment is not None and len(found) < count:
        found.append(moment)
        moment = next_fire(line, moment, tz)
    # (in UTC: adding to a local time is wall-clock arithmetic, which drops the fold)
    end = (found[-1] if found else begin).astimezone(UTC) + timedelta(seconds=1)
    if replay:
        replayed = [run for run in reference_runs(line, tz, begin, end) if run < end]
        # (in UTC: Python never finds a time of a repeated hour equal to one in another zone)
        in_utc = [moment.astimezone(UTC) for moment in found]
        assert replayed == in_utc, f"{text!r}: the replay of Debian's cron lists other times"
    return [moment.isoformat() for moment in found]


# --- issue 11 ------------------------------------------------------------------------------


def test_no_day_is_lost_after_spring_forward() -> None:
    assert local_fires("0 0 * * *", "Europe/Berlin", "2025-03-30T00:00", 2) == [
        "2025-03-31T00:00:00+02:00",
        "2025-04-01T00:00:00+02:00",
    ]
    assert local_fires("0 0 * * 1", "Europe/Berlin", "2025-03-29T00:00", 1) == [
        "2025-03-31T00:00:00+02:00"
    ]
    assert local_fires("15 0 * * *", "Europe/Berlin", "2025-03-30T00:15", 1) == [
        "2025-03-31T00:15:00+02:00"
    ]
    assert local_fires("59 0 * * *", "America/New_York", "2025-03-09T00:59", 1) == [
        "2025-03-10T00:59:00-04:00"
    ]
    assert local_fires("0 0 1,15 * *", "America/New_York", "2025-03-15T00:00", 1) == [
        "2025-04-01T00:00:00-04:00"
    ]


@pytest.mark.parametrize(
    "zone", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham"]
)
def test_monthly_never_skips_a_month(zone: str) -> None:
    fires = local_fires("@monthly", zone, "2025-01-15T00:00", 24, replay=False)
    months = [(2025, month) for month in range(2, 13)] + [(2026, month) for month in range(1, 13)]
    expected = [f"{year}-{month:02}-01T00:00:00" for year, month in [*months, (2027, 1)]]
    assert [fire[:19] for fire in fires] == expected


def test_a_skipped_time_is_caught_up_when_the_line_has_other_hours() -> None:
    assert local_fires("0 1,2 * * *", "Europe/Berlin", "2025-03-30T00:30", 3) == [
        "2025-03-30T01:00:00+01:00",
        "2025-03-30T03:00:00+02:00",  # 02:00 did not exist: right after the jump
        "2025-03-31T01:00:00+02:00",
    ]


def test_every_skipped_time_runs_right_after_the_jump_in_order() -> None:
    assert local_fires("0,30 2 * * *", "Europe/Berlin", "2025-03-29T12:00", 3) == [
        "2025-03-30T03:00:00+02:00",
        "2025-03-30T03:00:00.000001+02:00",
        "2025-03-31T02:00:00+02:00",
    ]
    # the line's own time at the jump runs after the skipped ones, as Debian's loop does
    assert local_fires("0 2,3 * * *", "Europe/Berlin", "2025-03-29T12:00", 3) == [
        "2025-03-30T03:00:00+02:00",
        "2025-03-30T03:00:00.000001+02:00",
        "2025-03-31T02:00:00+02:00",
    ]


def test_wildcard_lines_run_by_the_new_clock() -> None:
    # cron(8): jobs with `*` in the hour or minute field are not caught up...
    assert local_fires("0 */2 * * *", "Europe/Berlin", "2025-03-29T23:00", 2) == [
        "2025-03-30T00:00:00+01:00",
        "2025-03-30T04:00:00+02:00",
    ]
    # ...and run in both passes of a repeated hour
    assert local_fires("0 */2 * * *", "Europe/Berlin", "2025-10-25T23:00", 4) == [
        "2025-10-26T00:00:00+02:00",
        "2025-10-26T02:00:00+02:00",
        "2025-10-26T02:00:00+01:00",
        "2025-10-26T04:00:00+01:00",
    ]
    assert local_fires("@hourly", "Europe/Berlin", "2025-03-30T01:30", 2) == [
        "2025-03-30T03:00:00+02:00",
        "2025-03-30T04:00:00+02:00",
    ]


def test_every_hour_listed_without_a_star_is_a_fixed_time_line() -> None:
    assert local_fires("0 0-23 * * *", "Europe/Berlin", "2025-03-30T00:30", 4) == [
        "2025-03-30T01:00:00+01:00",
        "2025-03-30T03:00:00+02:00",  # 02:00, caught up
        "2025-03-30T03:00:00.000001+02:00",  # 03:00 itself
        "2025-03-30T04:00:00+02:00",
    ]
    assert local_fires("0 0-23 * * *", "Europe/Berlin", "2025-10-26T01:30", 3) == [
        "2025-10-26T02:00:00+02:00",
        "2025-10-26T03:00:00+01:00",  # 02:00 already ran in the first pass
        "2025-10-26T04:00:00+01:00",
    ]


def test_listing_is_firing_after_fall_back() -> None:
    assert local_fires("30 * * * *", "Europe/Berlin", "2025-10-26T02:00", 3) == [
        "2025-10-26T02:30:00+02:00",
        "2025-10-26T02:30:00+01:00",
        "2025-10-26T03:30:00+01:00",
    ]
    # asked from the second pass (as a listing may be), the answer is the same
    zone = ZoneInfo("Europe/Berlin")
    second_pass = datetime(2025, 10, 26, 2, 10, fold=1, tzinfo=zone)
    fire = next_fire(parse_line("30 * * * *"), second_pass, zone)
    assert fire is not None
    assert fire.isoformat() == "2025-10-26T02:30:00+01:00"
    fixed = next_fire(parse_line("30 2 * * *"), second_pass, zone)
    assert fixed is not None
    assert fixed.isoformat() == "2025-10-27T02:30:00+01:00"


@pytest.mark.parametrize(
    ("zone", "night", "jump"),
    [
        ("Europe/Berlin", "2026-03-29", "2026-03-29T03:00:00+02:00"),
        ("America/New_York", "2026-03-08", "2026-03-08T03:00:00-04:00"),
    ],
)
def test_tests_test_crontab_dst_cases(zone: str, night: str, jump: str) -> None:
    """tests/test_crontab.py's DST cases; `*/20 2` now follows cron(8)'s wildcard rule."""
    day_before = (date.fromisoformat(night) - timedelta(days=1)).isoformat()
    fixed = local_fires("30 2 * * *", zone, f"{day_before}T23:00", 2)
    assert fixed[0] == jump
    assert fixed[1][:10] != night
    # a wildcard line (minute starts with `*`) skips the hour that did not exist
    wildcard = local_fires("*/20 2 * * *", zone, f"{day_before}T23:00", 1)
    assert wildcard[0][:16] == f"{date.fromisoformat(night) + timedelta(days=1)}T02:00"


def test_repeated_hour_runs_fixed_lines_once_and_wildcards_twice() -> None:
    assert local_fires("30 1 * * *", "America/New_York", "2026-11-01T00:00", 2) == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-02T01:30:00-05:00",
    ]
    hourly = local_fires("30 * * * *", "America/New_York", "2026-11-01T00:00", 4)
    assert hourly == [
        "2026-11-01T00:30:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:30:00-05:00",
        "2026-11-01T02:30:00-05:00",
    ]


# --- half-hour shifts and 45-minute offsets ------------------------------------------------


def test_lord_howe_moves_its_clocks_by_thirty_minutes() -> None:
    zone = "Australia/Lord_Howe"  # 2025-10-05 02:00+10:30 → 02:30+11:00
    assert local_fires("15 2 * * *", zone, "2025-10-05T00:00", 2) == [
        "2025-10-05T02:30:00+11:00",
        "2025-10-06T02:15:00+11:00",
    ]
    assert local_fires("*/15 2 * * *", zone, "2025-10-05T00:00", 3) == [
        "2025-10-05T02:30:00+11:00",
        "2025-10-05T02:45:00+11:00",
        "2025-10-06T02:00:00+11:00",
    ]
    # 2026-04-05 02:00+11:00 → 01:30+10:30
    assert local_fires("45 1 * * *", zone, "2026-04-05T00:00", 2) == [
        "2026-04-05T01:45:00+11:00",
        "2026-04-06T01:45:00+10:30",
    ]
    assert local_fires("45 * * * *", zone, "2026-04-05T00:00", 4) == [
        "2026-04-05T00:45:00+11:00",
        "2026-04-05T01:45:00+11:00",
        "2026-04-05T01:45:00+10:30",
        "2026-04-05T02:45:00+10:30",
    ]


def test_chatham_with_its_45_minute_offsets() -> None:
    zone = "Pacific/Chatham"  # 2025-09-28 02:45+12:45 → 03:45+13:45
    assert local_fires("0 3 * * *", zone, "2025-09-28T00:00", 2) == [
        "2025-09-28T03:45:00+13:45",
        "2025-09-29T03:00:00+13:45",
    ]
    assert local_fires("*/30 3 * * *", zone, "2025-09-28T00:00", 2) == [
        "2025-09-29T03:00:00+13:45",
        "2025-09-29T03:30:00+13:45",
    ]
    # 2026-04-05 03:45+13:45 → 02:45+12:45
    assert local_fires("0 3 * * *", zone, "2026-04-05T00:00", 2) == [
        "2026-04-05T03:00:00+13:45",
        "2026-04-06T03:00:00+12:45",
    ]
    assert local_fires("0 * * * *", zone, "2026-04-05T01:30", 4) == [
        "2026-04-05T02:00:00+13:45",
        "2026-04-05T03:00:00+13:45",
        "2026-04-05T03:00:00+12:45",
        "2026-04-05T04:00:00+12:45",
    ]


# --- cronsim's DST tests (Europe/Riga, 2021) -----------------------------------------------

# cronsim lists a time once; where Debian runs a line twice right after the jump (a skipped
# time, then the line's own time), the second run is the one a microsecond later.
RIGA_SPRING = [
    ("0 * * * *", "2021-03-28T01:30", ["02:00+02", "04:00+03"]),
    ("*/30 * * * *", "2021-03-28T02:10", ["02:30+02", "04:00+03", "04:30+03"]),
    ("*/15 * * * *", "2021-03-28T02:40", ["02:45+02", "04:00+03"]),
    ("0 */2 * * *", "2021-03-28T01:30", ["02:00+02", "04:00+03", "06:00+03"]),
    ("30 */2 * * *", "2021-03-28T01:30", ["02:30+02", "04:30+03"]),
    ("0 1,2,3,4,5 * * *", "2021-03-28T01:30", ["02:00+02", "04:00+03", "04:00.000001+03"]),
    ("30 1,2,3,4,5 * * *", "2021-03-28T01:30", ["02:30+02", "04:00+03", "04:30+03"]),
    ("0 2 * * *", "2021-03-28T01:30", ["02:00+02", "02:00+03"]),
    ("0 3 * * *", "2021-03-27T01:30", ["03:00+02", "04:00+03", "03:00+03"]),
    ("0 4 * * *", "2021-03-27T01:30", ["04:00+02", "04:00+03", "04:00+03"]),
    ("0 1-5 * * *", "2021-03-28T01:30", ["02:00+02", "04:00+03", "04:00.000001+03"]),
    ("0 1,3,5,7,9,11,13,15,17,19,21,23 * * *", "2021-03-28T00:30", ["01:00+02", "04:00+03"]),
    ("15 3 * * *", "2021-03-27T00:00", ["03:15+02", "04:00+03", "03:15+03"]),
    ("* * * * *", "2021-03-28T02:58", ["02:59+02", "04:00+03"]),
    ("* 1-6 * * *", "2021-03-28T02:58", ["02:59+02", "04:00+03"]),
]
RIGA_AUTUMN = [
    ("0 * * * *", "2021-10-31T01:30", ["02:00+03", "03:00+03", "03:00+02", "04:00+02"]),
    ("*/30 * * * *", "2021-10-31T02:10", ["02:30+03", "03:00+03", "03:30+03", "03:00+02"]),
    ("0 */2 * * *", "2021-10-31T01:30", ["02:00+03", "04:00+02", "06:00+02"]),
    ("30 */2 * * *", "2021-10-31T01:30", ["02:30+03", "04:30+02"]),
    ("0 */3 * * *", "2021-10-31T01:30", ["03:00+03", "03:00+02", "06:00+02"]),
    ("0 1,2,3,4,5 * * *", "2021-10-31T01:30", ["02:00+03", "03:00+03", "04:00+02"]),
    ("30 1,2,3,4,5 * * *", "2021-10-31T01:30", ["02:30+03", "03:30+03", "04:30+02"]),
    ("0 2 * * *", "2021-10-31T01:30", ["02:00+03", "02:00+02"]),
    ("0 3 * * *", "2021-10-31T01:30", ["03:00+03", "03:00+02"]),
    ("0 4 * * *", "2021-10-30T01:30", ["04:00+03", "04:00+02", "04:00+02"]),
    ("0 1-5 * * *", "2021-10-31T01:30", ["02:00+03", "03:00+03", "04:00+02"]),
    ("15 3 * * *", "2021-10-30T00:00", ["03:15+03", "03:15+03", "03:15+02"]),
    ("* * * * *", "2021-10-31T03:58", ["03:59+03", "03:00+02", "03:01+02"]),
    ("* 1-6 * * *", "2021-10-31T03:58", ["03:59+03", "03:00+02", "03:01+02"]),
]


@pytest.mark.parametrize(("line", "start", "expected"), RIGA_SPRING + RIGA_AUTUMN)
def test_cronsims_dst_cases(line: str, start: str, expected: list[str]) -> None:
    fires = local_fires(line, "Europe/Riga", start, len(expected))
    short = [f"{fire[11:16]}{fire[19:26] if '.' in fire else ''}{fire[-6:-3]}" for fire in fires]
    assert short == expected


# --- croniter's DST tests (US/Eastern, 2020) -----------------------------------------------


def test_croniters_repeated_hour_cases() -> None:
    zone = ZoneInfo("US/Eastern")  # 2020-11-01 02:00-04:00 → 01:00-05:00
    start, stop = datetime(2020, 10, 30, tzinfo=zone), datetime(2020, 11, 3, tzinfo=zone)
    got = {}
    for hour in (0, 1, 2, 3):
        for minute in (0, 30):
            line = parse_line(f"{minute} {hour} * * *")
            fires = fire_list(line, zone, start - MICRO, stop + MICRO)
            got[hour, minute] = [fire.astimezone(zone).isoformat()[5:] for fire in fires]
    # croniter's expectations (test_range_dst_backwards): once in the repeated hour, as Debian
    days = {"10-30": "-04:00", "10-31": "-04:00", "11-01": "", "11-02": "-05:00"}
    for (hour, minute), listed in got.items():
        first_pass = "-04:00" if hour < 2 else "-05:00"
        expected = [
            f"{day}T{hour:02}:{minute:02}:00{offset or first_pass}" for day, offset in days.items()
        ]
        if (hour, minute) == (0, 0):
            expected.append("11-03T00:00:00-05:00")
        assert listed == expected, (hour, minute)


def test_croniters_skipped_hour_cases() -> None:
    zone = ZoneInfo("US/Eastern")
    start, stop = datetime(2020, 3, 7, tzinfo=zone), datetime(2020, 3, 11, tzinfo=zone)
    on_the_day = {}
    for hour in (1, 2, 3, 4):
        for minute in (0, 30):
            fires = fire_list(parse_line(f"{minute} {hour} * * *"), zone, start, stop)
            assert len(fires) == 4
            on_the_day[hour, minute] = fires[1].astimezone(zone).isoformat()[11:]
    assert on_the_day == {
        (1, 0): "01:00:00-05:00",
        (1, 30): "01:30:00-05:00",
        (2, 0): "03:00:00-04:00",
        (2, 30): "03:00:00-04:00",  # croniter: 03:30; Debian runs it right after the jump
        (3, 0): "03:00:00-04:00",
        (3, 30): "03:30:00-04:00",
        (4, 0): "04:00:00-04:00",
        (4, 30): "04:30:00-04:00",
    }


def test_croniters_daily_across_fall_back() -> None:
    zone = ZoneInfo("US/Eastern")
    start, stop = datetime(2020, 10, 30, tzinfo=zone), datetime(2020, 11, 10, tzinfo=zone)
    assert len(fire_list(parse_line("0 0 * * *"), zone, start - MICRO, stop + MICRO)) == 12


# --- clock corrections and small jumps (made-up zones: no real zone has them since 1980) ---


def test_a_jump_of_three_hours_or_more_is_a_correction() -> None:
    # Samoa skipped 2011-12-30: more than 3 hours, so nothing is caught up.
    assert local_fires("0 12 * * *", "Pacific/Apia", "2011-12-29T00:00", 2) == [
        "2011-12-29T12:00:00-10:00",
        "2011-12-31T12:00:00+14:00",
    ]
    zone = made_up_zone(
        "Test/Corrections",
        [
            (datetime(2025, 6, 1, 0, 0, tzinfo=UTC), timedelta(hours=3)),  # 3 h forward
            (datetime(2025, 6, 2, 3, 0, tzinfo=UTC), timedelta(minutes=-1)),  # 3 h 1 min back
        ],
    )
    start, end = datetime(2025, 5, 31, 22, tzinfo=UTC), datetime(2025, 6, 2, 6, tzinfo=UTC)
    fires = {}
    for text in ("30 1 * * *", "30 5 * * *"):
        line = parse_line(text)
        fires[text] = fire_list(line, zone, start, end)
        assert fires[text] == reference_runs(line, zone, start, end)
    # 01:30 on June 1st never came, and is not caught up
    assert fires["30 1 * * *"] == [datetime(2025, 6, 1, 22, 30, tzinfo=UTC)]
    # 05:30 on June 2nd came twice, and a fixed-time line runs both times
    assert fires["30 5 * * *"] == [
        datetime(2025, 6, 1, 2, 30, tzinfo=UTC),
        datetime(2025, 6, 2, 2, 30, tzinfo=UTC),
        datetime(2025, 6, 2, 5, 31, tzinfo=UTC),
    ]


def test_a_jump_of_under_five_minutes_catches_up_every_line() -> None:
    zone = made_up_zone(
        "Test/Small",
        [
            (datetime(2025, 6, 1, 12, 0, tzinfo=UTC), timedelta(minutes=4)),
            (datetime(2025, 6, 1, 18, 0, tzinfo=UTC), timedelta(minutes=9)),
            (datetime(2025, 6, 2, 0, 0, tzinfo=UTC), timedelta(minutes=5)),
        ],
    )
    start, end = datetime(2025, 6, 1, 11, tzinfo=UTC), datetime(2025, 6, 2, 1, tzinfo=UTC)
    for text in ("* 12 * * *", "1-3 12 * * *", "*/2 18 * * *", "2-6 18 * * *", "* 0 * * *"):
        line = parse_line(text)
        assert fire_list(line, zone, start, end) == reference_runs(line, zone, start, end)
    caught = fire_list(parse_line("*/2 12 * * *"), zone, start, end)
    assert [fire.strftime("%H:%M:%S.%f") for fire in caught[:3]] == [
        "12:00:00.000000",  # 12:00 and 12:02 local were skipped: caught up (wildcard too)
        "12:00:00.000001",
        "12:00:00.000002",  # 12:04 local itself
    ]


# --- invariants -----------------------------------------------------------------------------


def scheduled_day(fire: datetime, zone: ZoneInfo, hour: int, minute: int) -> date:
    """The local day a fire belongs to: its own, or for a catch-up the skipped time's."""
    local = fire.astimezone(zone)
    if (local.hour, local.minute) == (hour, minute):
        return local.date()
    jump = fire.replace(microsecond=0)  # catch-ups run microseconds after the jump
    gap_start = (jump - timedelta(seconds=1)).astimezone(zone).replace(tzinfo=None)
    gap_start += timedelta(seconds=1)
    for day in (gap_start.date(), gap_start.date() + timedelta(days=1)):
        if gap_start <= datetime.combine(day, dt_time(hour, minute)) < local.replace(tzinfo=None):
            return day
    raise AssertionError(f"{fire} is neither at {hour}:{minute} nor a catch-up")


def around(change: Transition, days: int) -> tuple[datetime, datetime]:
    return change.at - timedelta(days=days), change.at + timedelta(days=days)


def interval(change: Transition) -> tuple[datetime, int]:
    """The wall-clock interval skipped or repeated at a change: its start, and its length."""
    low, high = sorted((change.before, change.after))
    return (change.at + timedelta(seconds=low)).replace(tzinfo=None), high - low


def times_near(change: Transition) -> list[tuple[int, int]]:
    """Local (hour, minute) pairs in and next to the skipped or repeated interval."""
    start, length = interval(change)
    offsets = (-60, 0, length // 2, length - 60, length)
    walls = [start + timedelta(seconds=offset) for offset in offsets]
    return sorted({(wall.hour, wall.minute) for wall in walls} | {(0, 0), (23, 30)})


@pytest.mark.timeout(300)
def test_a_daily_line_fires_once_every_day_in_every_zone() -> None:
    for name in dst_zones():
        zone = ZoneInfo(name)
        for change in transitions(name):
            start, end = around(change, 3)
            for hour, minute in times_near(change):
                fires = fire_list(parse_line(f"{minute} {hour} * * *"), zone, start, end)
                days = Counter(scheduled_day(fire, zone, hour, minute) for fire in fires)
                first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
                inside = [d for d in days if first < d < last]
                assert len(inside) == (last - first).days - 1, (name, change, hour, minute)
                assert all(days[d] == 1 for d in inside), (name, change, hour, minute, days)


@pytest.mark.timeout(300)
def test_monthly_and_weekly_lines_fire_once_a_month_and_once_a_week() -> None:
    for name in dst_zones():
        zone = ZoneInfo(name)
        start, end = datetime(2025, 1, 1, tzinfo=zone), datetime(2031, 1, 1, tzinfo=zone)
        wall, length = interval(transitions(name)[0])
        inside = wall + timedelta(seconds=length // 2)
        text = f"{inside.minute} {inside.hour} {inside.day} * *"
        for line in ("@monthly", text):
            fires = fire_list(parse_line(line), zone, start - timedelta(days=1), end)
            months = Counter((f.astimezone(zone).year, f.astimezone(zone).month) for f in fires)
            day = 1 if line == "@monthly" else inside.day
            expected = {(y, m) for y, m in MONTHS if calendar.monthrange(y, m)[1] >= day}
            assert set(months) == expected, (name, line)
            assert set(months.values()) == {1}, (name, line, months)
        for change in transitions(name):
            wall, length = interval(change)
            inside = wall + timedelta(seconds=length // 2)
            weekly = f"{inside.minute} {inside.hour} * * {inside.isoweekday() % 7}"
            for line in ("@weekly", weekly):
                fires = fire_list(parse_line(line), zone, *around(change, 21))
                assert 5 <= len(fires) <= 7, (name, line, fires)
                gaps = {b - a for a, b in itertools.pairwise(fires)}
                assert all(timedelta(days=6) < gap < timedelta(days=8) for gap in gaps)


def test_far_future_changes_follow_the_zones_rules() -> None:
    assert local_fires("30 2 * * *", "Europe/Berlin", "2090-03-25T12:00", 2) == [
        "2090-03-26T03:00:00+02:00",
        "2090-03-27T02:30:00+02:00",
    ]
    assert local_fires("0 0 0 1 1 * 2099", "Pacific/Chatham", "2025-01-01T00:00", 2, False) == [
        "2099-01-01T00:00:00+13:45"
    ]


# --- random lines against the replay of Debian's cron ---------------------------------------


def focus(change: Transition, rng: random.Random) -> datetime:
    """A random wall time in the skipped or repeated interval of a change."""
    start, length = interval(change)
    return start + timedelta(seconds=rng.randrange(length))


def compare(
    lines: list[CronLine], zone: ZoneInfo, start: datetime, end: datetime, rng: random.Random
) -> int:
    """next_fire iterated equals the replay; so does next_fire from random moments."""
    replayed = 0
    lookups: dict[int, list[Lookup]] = {}
    for line in lines:
        unit = clock_unit(line)
        if unit not in lookups:
            lookups[unit] = cron_loop(zone, start, end + timedelta(minutes=2), unit)
        replay = [run for run in debian_runs(line, lookups[unit]) if run < end]
        assert fire_list(line, zone, start, end) == replay, f"{line.text!r} in {zone.key} {start}"
        for _ in range(3):
            moment = start + (end - start) * rng.random()
            if rng.random() < 0.3 and replay:
                moment = rng.choice(replay) + rng.choice((-MICRO, timedelta(0), MICRO))
            check_from(line, zone, moment, replay, end)
        replayed += len(replay)
    return replayed


def check_from(
    line: CronLine, zone: ZoneInfo, moment: datetime, replay: list[datetime], end: datetime
) -> None:
    """next_fire from any moment (not only from a fire) gives the replay's next run."""
    index = bisect.bisect_right(replay, moment)
    got = next_fire(line, moment, zone)
    if index == len(replay):
        assert got is None or got >= end
    else:
        assert got is not None, f"{line.text!r} in {zone.key} after {moment}"
        assert got.astimezone(UTC) == replay[index], f"{line.text!r} in {zone.key} after {moment}"


def windows(rng: random.Random, hours: float) -> list[tuple[Transition, datetime, datetime]]:
    """Every change of every zone with DST in 2025-2030, with a window around it."""
    found = []
    for name in dst_zones():
        for change in transitions(name):
            before = timedelta(seconds=rng.randrange(600, int(hours * 3600)) // 60 * 60)
            after = timedelta(seconds=rng.randrange(600, int(hours * 3600)) // 60 * 60)
            found.append((change, change.at - before, change.at + after))
    return found


def minute_line(rng: random.Random, change: Transition) -> CronLine:
    while True:
        text = random_line(rng, focus(change, rng))
        if text.startswith("@") or len(text.split()) == 5:
            return parse_line(text)


def second_line(rng: random.Random, change: Transition) -> CronLine:
    while True:
        text = random_line(rng, focus(change, rng))
        if len(text.split()) >= 6 and not text.startswith("* * "):
            return parse_line(text)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_random_lines_run_as_debian_runs_them_at_every_clock_change() -> None:
    rng = random.Random(2025)
    cases = fires = 0
    for change, start, end in windows(rng, 12):
        lines = [minute_line(rng, change), minute_line(rng, change)]
        fires += compare(lines, ZoneInfo(change.zone), start, end, rng)
        cases += len(lines)
    assert cases > 4800
    assert fires > 100_000


def test_random_lines_at_a_sample_of_clock_changes() -> None:
    rng = random.Random(30)
    sample = rng.sample(windows(rng, 12), 400)
    for change, start, end in sample:
        compare([minute_line(rng, change)], ZoneInfo(change.zone), start, end, rng)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_random_lines_with_seconds_run_as_debian_would() -> None:
    rng = random.Random(6)
    sample = rng.sample(windows(rng, 0.75), 400)
    for change, start, end in sample:
        lines = [second_line(rng, change), second_line(rng, change)]
        compare(lines, ZoneInfo(change.zone), start, end, rng)


def test_random_lines_in_every_zone() -> None:
    """Every IANA zone, DST or not, at a random time of 2025-2030."""
    import zoneinfo

    rng = random.Random(599)
    for name in sorted(zoneinfo.available_timezones()):
        zone = ZoneInfo(name)
        start = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(3_000_000))
        text = random_line(rng, start.astimezone(zone).replace(tzinfo=None))
        line = parse_line(text)
        # (seconds lines replay one step a second: 20 minutes of them, a day of the others)
        length = timedelta(minutes=20) if len(text.split()) >= 6 else timedelta(days=1)
        compare([line], zone, start, start + length, rng)


# --- speed ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["*/5 * * * *", "0 9 * * 1-5", "0 0 29 2 *", "@monthly", "*/10 * * * * *"]
)
def test_next_fire_is_fast(text: str) -> None:
    line, zone = parse_line(text), ZoneInfo("Europe/Berlin")
    moment = datetime(2025, 3, 29, 12, 7, tzinfo=zone)
    timings = []
    for _ in range(200):
        began = time.perf_counter()
        next_fire(line, moment, zone)
        timings.append(time.perf_counter() - began)
    assert statistics.median(timings) < 0.001
