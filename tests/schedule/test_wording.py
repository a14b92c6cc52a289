"""Schedules in words, as the dashboard shows them, for every form task.yaml takes.

Mappings go through `shown`, the dump TaskInfo.schedules carries (tasse/tasks/info.py), from
what task.yaml says. The words are checked against what the fields mean: cronline.py for
crontab lines (weekdays to 7, `a/n`, day OR weekday unless a field starts with `*`) and
APScheduler's fire times for mappings (day_of_week 0 = Monday).
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter

from tasse.schedule.cronline import parse_line
from tasse.schedule.mapping import CronMappingTrigger
from tasse.schedule.specs import Schedule
from tasse.schedule.wording import NO_SCHEDULE, describe, describe_all


def shown(schedule: dict[str, Any]) -> dict[str, Any]:
    """A task.yaml mapping as the API shows it in TaskInfo.schedules."""
    spec = TypeAdapter(Schedule).validate_python(schedule)
    assert not isinstance(spec, str)
    dumped: dict[str, Any] = spec.model_dump(mode="json", exclude_defaults=True)
    return dumped


CASES = [
    # crontab lines, 5 fields
    ("*/10 * * * *", "Every 10 minutes"),
    ("30 9 * * 1-5", "At 09:30, Monday through Friday"),
    ("0 8,12,18 * * *", "At 08:00, 12:00 and 18:00"),
    ("*/15 9-17 * * mon-fri", "Every 15 minutes, between 09:00 and 17:59, Monday through Friday"),
    ("5/15 * * * *", "Every 15 minutes, starting at 5 minutes past the hour"),
    ("0 12 * jan,jul 7", "At 12:00, only on Sunday, only in January and July"),
    ("0 0 1 * 1", "At 00:00, on day 1 of the month, or on Monday"),
    ("0 0 */2 * 1", "At 00:00, every 2 days, only on Monday"),
    ("0 0 * * 3/2", "At 00:00, only on Wednesday, Friday, and Sunday"),
    ("0 0 * * */2", "At 00:00, only on Tuesday, Thursday, Saturday, and Sunday"),
    ("0 0 * * 0-7", "At 00:00, Monday through Sunday"),
    ("0 0 * * 0,7", "At 00:00, only on Sunday"),
    # 6 fields (a leading second) and 7 (and a trailing year)
    ("*/10 * * * * *", "Every 10 seconds"),
    ("30 0 9 * * 1-5", "At 09:00:30, Monday through Friday"),
    ("15 30 9 * * mon-fri 2026", "At 09:30:15, Monday through Friday, only in 2026"),
    (
        "0 0 0 1 1 * 2026/2",
        "At 00:00, on day 1 of the month, only in January, every 2 years, 2026 through 2099",
    ),
    # nicknames
    ("@daily", "At 00:00"),
    ("@HOURLY", "Every hour"),
    ("@weekly", "At 00:00, only on Sunday"),
    ("@yearly", "At 00:00, on day 1 of the month, only in January"),
    ("@reboot", "When the server starts"),
    # interval mappings, in the units the task gave
    (shown({"trigger": "interval", "seconds": 10}), "Every 10 seconds"),
    (shown({"trigger": "interval", "minutes": 90}), "Every 90 minutes"),
    (shown({"trigger": "interval", "hours": 1}), "Every hour"),
    (shown({"trigger": "interval", "hours": 1, "minutes": 30}), "Every 1 hour and 30 minutes"),
    (
        shown({"trigger": "interval", "weeks": 2, "days": 1, "hours": 1.5}),
        "Every 2 weeks, 1 day and 1.5 hours",
    ),
    (
        shown(
            {
                "trigger": "interval",
                "minutes": 5,
                "start_date": "2026-01-01 09:00",
                "end_date": "2026-06-30T00:00:00+02:00",
                "jitter": 30,
                "timezone": "Europe/Berlin",
            }
        ),
        "Every 5 minutes (Europe/Berlin), from 2026-01-01 09:00 until 2026-06-30 00:00 +02:00, "
        "with up to 30 seconds of random delay",
    ),
    # cron mappings, with APScheduler's defaults below the last field given
    (
        shown({"trigger": "cron", "day_of_week": "mon-fri", "hour": 9, "minute": 30}),
        "At 09:30, Monday through Friday",
    ),
    (shown({"trigger": "cron", "hour": 9}), "At 09:00"),
    (shown({"trigger": "cron", "minute": "*/5"}), "Every 5 minutes"),
    (
        shown({"trigger": "cron", "day_of_week": "sat,sun", "hour": 10, "jitter": 300}),
        "At 10:00, only on Saturday and Sunday, with up to 5 minutes of random delay",
    ),
    (
        shown({"trigger": "cron", "day_of_week": "fri-sun", "hour": 18, "timezone": "Asia/Tokyo"}),
        "At 18:00, Friday through Sunday (Asia/Tokyo)",
    ),
    (
        shown({"trigger": "cron", "day_of_week": "*/2"}),
        "At 00:00, only on Monday, Wednesday, Friday, and Sunday",
    ),
    (
        shown({"trigger": "cron", "day": "last", "hour": 23}),
        "At 23:00, on the last day of the month",
    ),
    (
        shown({"trigger": "cron", "day": "2nd fri", "hour": 8}),
        "At 08:00, on the second Friday of the month",
    ),
    (
        shown({"trigger": "cron", "day": 1, "day_of_week": "mon"}),
        "At 00:00, on day 1 of the month, only on Monday",
    ),
    (
        shown({"trigger": "cron", "month": "jan-mar", "day": 1, "hour": 6}),
        "At 06:00, on day 1 of the month, January through March",
    ),
    (shown({"trigger": "cron", "week": "1-10", "hour": 9}), "Cron: week=1-10, hour=9"),
    # date mappings
    (shown({"trigger": "date", "run_date": "2026-12-24 18:00"}), "Once, at 2026-12-24 18:00"),
    (
        shown({"trigger": "date", "run_date": "2026-12-24T18:00:30Z"}),
        "Once, at 2026-12-24 18:00:30 UTC",
    ),
    (
        shown({"trigger": "date", "run_date": "2026-12-24 18:00", "timezone": "Europe/Berlin"}),
        "Once, at 2026-12-24 18:00 (Europe/Berlin)",
    ),
    # what Tasse would not accept still reads as written
    ("61 * * * *", "61 * * * *"),
    ("  ", "Empty schedule"),
    ({"trigger": "weekly", "at": "mon"}, "trigger=weekly, at=mon"),
    ({"trigger": "cron", "hour": "25"}, "trigger=cron, hour=25"),
    ({"trigger": "interval"}, "trigger=interval"),
]


@pytest.mark.parametrize(("schedule", "words"), CASES)
def test_a_schedule_in_words(schedule: dict[str, Any] | str, words: str) -> None:
    assert describe(schedule) == words


@pytest.mark.parametrize("schedule", [None, 42, [], {}, {"trigger": None}, {1: 2}])
def test_anything_else_still_reads(schedule: Any) -> None:
    assert describe(schedule)


@pytest.mark.parametrize(
    ("line", "weekdays"),
    [
        ("0 0 * * 3/2", {3, 5, 0}),  # from Wednesday to 7 (Sunday), in steps of 2
        ("0 0 * * */2", {0, 2, 4, 6}),  # 0-7 in steps of 2: 7 is not reached
        ("0 0 * * 1/2", {1, 3, 5, 0}),
        ("0 0 * * 6,7", {6, 0}),
    ],
)
def test_a_lines_weekdays_are_those_cronline_allows(line: str, weekdays: set[int]) -> None:
    assert parse_line(line).weekdays == weekdays
    named = {day for day in range(7) if _day_name(day) in describe(line)}
    assert named == weekdays


@pytest.mark.parametrize(
    ("line", "joined", "either"),
    [
        ("0 0 1 * 1", "or on Monday", True),
        ("0 0 1-7 * fri", "or on Friday", True),
        ("0 0 */2 * 1", "only on Monday", False),  # the day field starts with `*`
    ],
)
def test_day_and_weekday_join_as_cron_joins_them(line: str, joined: str, either: bool) -> None:
    parsed = parse_line(line)
    assert (not (parsed.dom_star or parsed.dow_star)) is either
    assert joined in describe(line)


@pytest.mark.parametrize("weekdays", ["*/2", "2/2", "mon,wed,fri", "sat,sun", "0,6"])
def test_a_mappings_weekdays_are_those_it_fires_on(weekdays: str) -> None:
    trigger = CronMappingTrigger(timezone="UTC", day_of_week=weekdays)
    wall, fired = trigger.next_wall(datetime(2026, 1, 5)), set()  # a Monday
    while wall is not None and wall < datetime(2026, 1, 19):
        fired.add(wall.isoweekday() % 7)  # as crontab counts: 0 = Sunday
        wall = trigger.next_wall(wall + timedelta(seconds=1))
    words = describe(shown({"trigger": "cron", "day_of_week": weekdays}))
    assert {day for day in range(7) if _day_name(day) in words} == fired


def test_all_of_a_tasks_schedules_in_one_line() -> None:
    schedules = [
        "*/10 * * * *",
        "30 9 * * 1-5",
        shown({"trigger": "date", "run_date": "2026-12-24"}),
    ]
    assert describe_all(schedules) == (
        "Every 10 minutes; at 09:30, Monday through Friday; once, at 2026-12-24 00:00"
    )
    assert describe_all(["@daily", "MON"]) == "At 00:00; MON"  # a raw line keeps its case


def test_a_task_without_schedules() -> None:
    assert describe_all([]) == NO_SCHEDULE == "No schedule"


def _day_name(day: int) -> str:
    """Crontab's weekday number (0 = Sunday) as a name."""
    return calendar.day_name[(day - 1) % 7]
