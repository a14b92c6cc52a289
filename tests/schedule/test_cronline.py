"""Crontab lines parse as Debian's cron reads them, with tasse/crontab.py's field meaning kept."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim, CronSimError

from tasse.schedule.cronline import CronLine, is_reboot, parse_line
from tasse.schedule.wallclock import next_fire
from tests.schedule.random_lines import random_line


def fires(text: str, zone: str, start: datetime, count: int) -> list[datetime]:
    """The next `count` fire times after `start`, in UTC."""
    line, tz = parse_line(text), ZoneInfo(zone)
    found: list[datetime] = []
    moment: datetime | None = start
    while len(found) < count and moment is not None:
        moment = next_fire(line, moment, tz)
        if moment is not None:
            found.append(moment.astimezone(UTC))
    return found


# The cases of tests/test_crontab.py, run against the new parser and next_fire.
@pytest.mark.parametrize(
    ("line", "first_three_utc"),
    [
        # day OR weekday when both are restricted: the 13th, and every Friday
        ("0 12 13 * fri", ["2026-02-06 12:00", "2026-02-13 12:00", "2026-02-20 12:00"]),
        # `*/4` starts with `*`: unrestricted, so AND: every 4th day that is a Monday
        ("0 0 */4 * mon", ["2026-02-09 00:00", "2026-03-09 00:00", "2026-04-13 00:00"]),
        # 0 and 7 are both Sunday; names in any case
        ("0 9 * * 0", ["2026-02-08 09:00", "2026-02-15 09:00", "2026-02-22 09:00"]),
        ("0 9 * * 7", ["2026-02-08 09:00", "2026-02-15 09:00", "2026-02-22 09:00"]),
        ("0 9 * FEB SUN", ["2026-02-08 09:00", "2026-02-15 09:00", "2026-02-22 09:00"]),
        ("@weekly", ["2026-02-08 00:00", "2026-02-15 00:00", "2026-02-22 00:00"]),
        ("@monthly", ["2026-03-01 00:00", "2026-04-01 00:00", "2026-05-01 00:00"]),
        ("@yearly", ["2027-01-01 00:00", "2028-01-01 00:00", "2029-01-01 00:00"]),
        # extensions: macros in any case, `a/n` as `a-<last>/n`
        ("@DAILY", ["2026-02-02 00:00", "2026-02-03 00:00", "2026-02-04 00:00"]),
        ("5/20 13 * * *", ["2026-02-01 13:05", "2026-02-01 13:25", "2026-02-01 13:45"]),
        # tabs separate fields as spaces do
        ("0\t0\t*\t*\t*", ["2026-02-02 00:00", "2026-02-03 00:00", "2026-02-04 00:00"]),
        (" \t30  6 * *\tmon-fri ", ["2026-02-02 06:30", "2026-02-03 06:30", "2026-02-04 06:30"]),
    ],
)
def test_standard_cron_meaning(line: str, first_three_utc: list[str]) -> None:
    start = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)  # a Sunday
    got = [f.strftime("%Y-%m-%d %H:%M") for f in fires(line, "UTC", start, 3)]
    assert got == first_three_utc


def test_six_fields_lead_with_seconds_and_seven_end_with_a_year() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert fires("*/20 * * * * *", "UTC", start, 3) == [
        start + timedelta(seconds=20),
        start + timedelta(seconds=40),
        start + timedelta(minutes=1),
    ]
    first = fires("*/10 * * * * * 2030", "UTC", start, 2)
    assert first == [datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, 0, 0, 10, tzinfo=UTC)]
    # after the last matching year: no more fires, found quickly
    assert fires("0 0 0 1 1 * 2027", "UTC", start, 5) == [datetime(2027, 1, 1, tzinfo=UTC)]


def test_a_line_that_never_fires_gives_none() -> None:
    assert fires("0 0 30 2 *", "Europe/Berlin", datetime(2026, 1, 1, tzinfo=UTC), 1) == []
    assert fires("0 0 0 29 2 * 2025-2027", "UTC", datetime(2024, 3, 1, tzinfo=UTC), 1) == []
    assert fires("0 0 29 2 *", "UTC", datetime(2025, 1, 1, tzinfo=UTC), 1) == [
        datetime(2028, 2, 29, tzinfo=UTC)
    ]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("61 * * * *", ["minute", "61", "0-59"]),
        ("0 25 * * *", ["hour", "25", "0-23"]),
        ("0 0 0 * *", ["day", "0", "1-31"]),
        ("0 0 * 13 *", ["month", "13"]),
        ("0 0 * * 8", ["day_of_week", "8"]),
        ("0 0 * * funday", ["day_of_week", "funday"]),
        ("*/0 * * * *", ["minute", "step"]),
        ("0 5-1 * * *", ["hour", "backwards"]),
        ("5-2 * * * *", ["minute", "'5-2'", "backwards"]),
        ("0 0 * * fri-mon", ["day_of_week", "backwards"]),
        ("0 0 * *", ["5, 6 or 7 fields", "4"]),
        ("0 0 * * * * * *", ["5, 6 or 7 fields", "8"]),
        ("@fortnightly", ["unknown macro"]),
        ("@daily 5", ["unknown macro"]),
        ("0 0 L * *", ["day", "'l'"]),
        ("0 0 1,,2 * *", ["day", "''"]),
        ("0 0 * * * * 1969", ["year", "1969"]),
        ("@reboot", ["@reboot", "is_reboot"]),
    ],
)
def test_bad_lines_name_the_field_and_value(line: str, words: list[str]) -> None:
    with pytest.raises(ValueError, match=r"\w") as caught:
        parse_line(line)
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("٣ * * * *", ["minute", "U+0663", "ARABIC-INDIC DIGIT THREE", "not ASCII"]),
        ("0 \uff11 * * *", ["hour", "U+FF11", "FULLWIDTH DIGIT ONE"]),
        ("0\u00a00 * * *", ["U+00A0", "NO-BREAK SPACE", "spaces or tabs"]),
        ("0 0 * * *\u3000", ["U+3000", "IDEOGRAPHIC SPACE"]),
        ("0 0 * * m\u043en", ["day_of_week", "CYRILLIC SMALL LETTER O"]),
        ("0 0 * * \u212aon", ["day_of_week", "KELVIN SIGN"]),
    ],
)
def test_only_ascii_is_accepted(line: str, words: list[str]) -> None:
    # Python's int() and str.split() accept these; Debian's cron (isdigit, ' ' and '\t') does not.
    with pytest.raises(ValueError, match="not ASCII") as caught:
        parse_line(line)
    for word in words:
        assert word in str(caught.value)


def test_flags_follow_debians_first_character_rule() -> None:
    line = parse_line("*/5 0-23 * * *")
    assert (line.minute_star, line.hour_star, line.wildcard) == (True, False, True)
    # every hour listed, but no `*`: a fixed-time job for Debian
    assert not parse_line("0 0-23 * * *").wildcard
    assert not parse_line("1,*/5 2 * * *").wildcard
    assert parse_line("@hourly").wildcard  # Debian's entry.c sets HR_STAR for @hourly
    for macro in ("@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"):
        assert not parse_line(macro).wildcard, macro
    assert parse_line("* 30 2 * * *").wildcard  # seconds extend the rule
    assert not parse_line("0-59 30 2 * * *").wildcard
    day_of_month, weekday = parse_line("0 0 */2 * mon"), parse_line("0 0 1 * *")
    assert (day_of_month.dom_star, day_of_month.dow_star) == (True, False)
    assert (weekday.dom_star, weekday.dow_star) == (False, True)


def test_fields_hold_the_allowed_values() -> None:
    line = parse_line("5/15 1-3,7 */10 jan,Mar-MAY 5-7")
    assert line.minutes == {5, 20, 35, 50}
    assert line.hours == {1, 2, 3, 7}
    assert line.days == {1, 11, 21, 31}
    assert line.months == {1, 3, 4, 5}
    assert line.weekdays == {5, 6, 0}  # 7 is Sunday
    assert line.seconds == {0}
    assert line.years is None
    assert parse_line("0 0 0 1 1 * 2027,2029-2030").years == frozenset({2027, 2029, 2030})
    assert parse_line("0 0 0 1 1 * *").years is None


def test_is_reboot() -> None:
    assert is_reboot("@reboot")
    assert is_reboot(" @REBOOT\t")
    assert not is_reboot("@daily")


def test_a_cron_line_checks_its_values() -> None:
    with pytest.raises(ValueError, match="hours"):
        CronLine(
            text="x",
            seconds=frozenset({0}),
            minutes=frozenset({0}),
            hours=frozenset({24}),
            days=frozenset({1}),
            months=frozenset({1}),
            weekdays=frozenset({0}),
            years=None,
            dom_star=False,
            dow_star=False,
            second_star=False,
            minute_star=False,
            hour_star=False,
        )


def test_random_lines_fire_as_cronsim_says_away_from_clock_changes() -> None:
    """cronsim, an independent reading of Debian's fields, agrees on days, steps and names."""
    rng = random.Random(11)
    compared = 0
    while compared < 1500:
        text = random_line(rng)
        if text.startswith("@") or len(text.split()) != 5 or "/" in text.split()[2]:
            continue  # cronsim takes 5 fields (and reads `a/n` in the day field its own way)
        if re.search(r"\b(\w+)-\1/", text):
            continue  # cronsim reads `a-a/n` as more than `a`, unlike cron
        zone = rng.choice(("UTC", "Asia/Kolkata", "Asia/Tokyo"))
        start = datetime(2026, rng.randint(1, 12), rng.randint(1, 28), tzinfo=ZoneInfo(zone))
        try:
            simulation = CronSim(text, start)
            expected = [next(simulation).astimezone(UTC) for _ in range(8)]
        except (CronSimError, StopIteration):
            continue  # cronsim refuses lines that can never fire (30 2 31 2 *)
        assert fires(text, zone, start, 8) == expected, f"{text!r} in {zone} from {start}"
        compared += 1
