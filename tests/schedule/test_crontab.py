"""Crontab lines fire as Debian's cron fires them: checked against cronsim, an independent
implementation that follows Debian cron, on thousands of random lines and across DST."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from tasse.errors import TaskConfigError
from tasse.schedule.cronline import parse_line
from tasse.schedule.triggers import crontab_trigger, upcoming
from tasse.tasks.discovery import load_or_error
from tasse.tasks.task import Task
from tasse.tasks.triggers import build_triggers
from tests.conftest import MakeTask

# Lord Howe Island moves its clocks by 30 minutes; cronsim assumes a whole hour there,
# so it is left out of the comparison (Tasse follows the zone's real offsets).
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "America/Sao_Paulo", "Asia/Kolkata")


def fires(line: str, zone: str, start: datetime, count: int) -> list[datetime]:
    """The next `count` fire times after `start`, in UTC, as Tasse schedules them."""
    trigger = crontab_trigger(line, zone)
    found: list[datetime] = []
    previous = None
    moment = start + timedelta(microseconds=1)
    while len(found) < count:
        fire = trigger.get_next_fire_time(previous, moment)
        if fire is None:
            break
        found.append(fire.astimezone(UTC))
        previous = moment = fire
    return found


def cron_fires(line: str, start: datetime, count: int) -> list[datetime]:
    simulation = CronSim(line, start)
    return [next(simulation).astimezone(UTC) for _ in range(count)]


def random_field(rng: random.Random, low: int, high: int) -> str:
    kind = rng.random()
    if kind < 0.3:
        return "*"
    if kind < 0.45:
        return f"*/{rng.randint(1, max(1, (high - low) // 2))}"
    if kind < 0.6:
        start = rng.randint(low, high - 1)
        return f"{start}-{rng.randint(start + 1, high)}"
    if kind < 0.75:
        picks = rng.sample(range(low, high + 1), 3)
        return ",".join(str(value) for value in sorted(picks))
    if kind < 0.85:
        # (cronsim reads `a-a/n` unlike cron, so ranges here are at least two long)
        start = rng.randint(low, high - 1)
        return f"{start}-{rng.randint(start + 1, high)}/{rng.randint(1, 5)}"
    return str(rng.randint(low, high))


def random_line(rng: random.Random) -> str:
    fields = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
    return " ".join(random_field(rng, low, high) for low, high in fields)


def test_random_lines_fire_as_debian_cron_does() -> None:
    rng = random.Random(2026)
    compared = 0
    while compared < 1500:
        line, zone = random_line(rng), rng.choice(ZONES)
        start = datetime(
            2026, rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), tzinfo=ZoneInfo(zone)
        )
        try:
            expected = cron_fires(line, start, 12)
        except (ValueError, StopIteration):
            continue  # cronsim refuses lines that can never fire (30 2 31 2 *)
        assert fires(line, zone, start, 12) == expected, f"{line!r} in {zone} from {start}"
        compared += 1


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
    assert fires("0 0 0 1 1 * 2027", "UTC", start, 5) == [datetime(2027, 1, 1, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("zone", "night", "jump_utc"),
    [
        ("Europe/Berlin", datetime(2026, 3, 29), "01:00"),
        ("America/New_York", datetime(2026, 3, 8), "07:00"),
    ],
)
def test_a_time_in_the_skipped_hour_runs_once_right_after_the_jump(
    zone: str, night: datetime, jump_utc: str
) -> None:
    start = night.replace(tzinfo=ZoneInfo(zone)) - timedelta(hours=1)
    first, second = fires("30 2 * * *", zone, start, 2)
    assert first.strftime("%H:%M") == jump_utc
    assert second - first > timedelta(hours=20)
    # A wildcard line (`*` starts its minute field) runs by the new clock, as cron(8) says:
    # the skipped hour is not caught up (before issue 11, `*/20 2` ran once after the jump).
    wildcard = fires("*/20 2 * * *", zone, start, 1)
    local = wildcard[0].astimezone(ZoneInfo(zone))
    assert (local.date(), local.hour, local.minute) == ((night + timedelta(days=1)).date(), 2, 0)


@pytest.mark.parametrize(
    ("zone", "night"),
    [("Europe/Berlin", datetime(2026, 10, 25)), ("America/New_York", datetime(2026, 11, 1))],
)
def test_a_time_in_the_repeated_hour_runs_once(zone: str, night: datetime) -> None:
    tz = ZoneInfo(zone)
    start = night.replace(tzinfo=tz) - timedelta(hours=1)
    fixed = fires("30 1 * * *" if zone.startswith("America") else "30 2 * * *", zone, start, 2)
    assert fixed[1] - fixed[0] > timedelta(hours=20)
    # a line with `*` hours fires by the clock: both passes of the hour
    hourly = fires("30 * * * *", zone, start, 5)
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(hourly))


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
        ("0 0 * *", ["5, 6 or 7 fields", "4"]),
        ("@fortnightly", ["unknown macro"]),
        ("0 0 L * *", ["day", "'l'"]),
    ],
)
def test_bad_lines_name_the_field_and_value(line: str, words: list[str]) -> None:
    with pytest.raises(ValueError, match=r"\w") as caught:
        parse_line(line)
    for word in words:
        assert word in str(caught.value)


def load(folder: Path) -> Task:
    result = load_or_error(folder)
    assert isinstance(result, Task), result
    return result


def test_task_yaml_takes_crontab_lines_beside_mappings(make_task: MakeTask) -> None:
    folder = make_task(
        "mixed",
        yaml="""
        timezone: Europe/Berlin
        schedule: "0 6 * * mon-fri"
        schedules:
          - "*/15 * * * *"
          - {trigger: interval, hours: 2}
    """,
    )
    task = load(folder)
    assert task.spec.triggers[:2] == ["0 6 * * mon-fri", "*/15 * * * *"]
    triggers = build_triggers(task, "UTC")
    now = datetime(2026, 11, 23, 5, 50, tzinfo=ZoneInfo("Europe/Berlin"))  # a Monday
    # 06:00 comes from both lines and is listed once
    assert [t.strftime("%H:%M") for t in upcoming(triggers[:2], 3, now)] == [
        "06:00",
        "06:15",
        "06:30",
    ]


def test_a_bad_line_in_task_yaml_names_the_key_and_field(make_task: MakeTask) -> None:
    folder = make_task("bad", yaml='schedules: ["*/15 * * * *", "0 25 * * *"]\n')
    error = load_or_error(folder)
    assert isinstance(error, TaskConfigError)
    assert error.key == "schedules.1"
    assert "hour" in str(error)
    assert "25" in str(error)
