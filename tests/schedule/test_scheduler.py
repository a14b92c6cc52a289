"""Schedules in task.yaml → APScheduler triggers → the fire times a user will see."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tasse.errors import TaskConfigError
from tasse.schedule.triggers import upcoming
from tasse.service import Tasse
from tasse.tasks import discovery
from tasse.tasks.triggers import build_triggers
from tests.conftest import MakeTask

BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")
#: a fixed "now" before every date used below, so expected times never drift
NOW = datetime(2029, 12, 1, tzinfo=UTC)

Schedule = Callable[..., list[Any]]


@pytest.fixture
def schedule(make_task: MakeTask) -> Schedule:
    """Write a task.yaml, load it as discovery does, and build its triggers."""

    def build(yaml: str, default_timezone: str = "UTC") -> list[Any]:
        task = discovery.load_task(make_task("job", yaml=yaml))
        return build_triggers(task, default_timezone)

    return build


def local(times: list[datetime], zone: ZoneInfo) -> list[str]:
    """Fire times as a user reads them on a wall clock in `zone`."""
    return [t.astimezone(zone).strftime("%a %Y-%m-%d %H:%M:%S") for t in times]


# -- interval ------------------------------------------------------------------------------


def test_interval_fires_every_period_from_start_until_end(schedule: Schedule) -> None:
    triggers = schedule(
        """
        scheduler:
          trigger: interval
          weeks: 1
          days: 1
          hours: 1
          minutes: 1
          seconds: 1
          start_date: 2030-01-01 00:00:00
          end_date: 2030-01-20 00:00:00
          timezone: Europe/Berlin
        """
    )

    times = upcoming(triggers, 10, NOW)

    assert local(times, BERLIN) == [
        "Tue 2030-01-01 00:00:00",
        "Wed 2030-01-09 01:01:01",
        "Thu 2030-01-17 02:02:02",
    ]


def test_interval_of_10_seconds_gives_times_10_seconds_apart(schedule: Schedule) -> None:
    triggers = schedule("scheduler: {trigger: interval, seconds: 10}")
    now = datetime.now(UTC)

    times = upcoming(triggers, 5, now)

    assert len(times) == 5
    assert now < times[0] <= now + timedelta(seconds=10)
    assert [b - a for a, b in itertools.pairwise(times)] == [timedelta(seconds=10)] * 4


def test_interval_jitter_delays_each_fire_by_at_most_the_jitter(schedule: Schedule) -> None:
    triggers = schedule(
        """
        scheduler:
          trigger: interval
          minutes: 1
          jitter: 5
          start_date: 2030-01-01 00:00:00+00:00
        """
    )

    times = upcoming(triggers, 20, NOW)

    start = datetime(2030, 1, 1, tzinfo=UTC)
    assert start <= times[0] <= start + timedelta(seconds=5)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(timedelta(minutes=1) <= gap <= timedelta(minutes=1, seconds=5) for gap in gaps)
    assert len(set(gaps)) > 1, "jitter should make the gaps differ"


@pytest.mark.parametrize(
    ("key", "yaml"),
    [
        ("scheduler", "scheduler: {trigger: interval}"),
        ("scheduler", "scheduler: {trigger: interval, seconds: 0, minutes: 0}"),
        ("schedules.1", "schedules: [{trigger: cron, hour: 1}, {trigger: interval}]"),
    ],
)
def test_a_zero_length_interval_is_rejected(schedule: Schedule, key: str, yaml: str) -> None:
    with pytest.raises(TaskConfigError, match="an interval needs a length") as raised:
        schedule(yaml)

    assert raised.value.task == "job"
    assert raised.value.key == key
    assert raised.value.file.endswith("job/task.yaml")


# -- cron ----------------------------------------------------------------------------------


def test_cron_uses_every_calendar_field(schedule: Schedule) -> None:
    triggers = schedule(
        """
        scheduler:
          trigger: cron
          year: 2030
          month: 1-3
          day: 1-15
          week: "*"
          day_of_week: mon-fri
          hour: 9
          minute: "*/15"
          second: 30
          timezone: America/New_York
        """
    )

    times = upcoming(triggers, 6, NOW)

    assert local(times, NEW_YORK) == [
        "Tue 2030-01-01 09:00:30",
        "Tue 2030-01-01 09:15:30",
        "Tue 2030-01-01 09:30:30",
        "Tue 2030-01-01 09:45:30",
        "Wed 2030-01-02 09:00:30",
        "Wed 2030-01-02 09:15:30",
    ]


def test_cron_week_selects_an_iso_week(schedule: Schedule) -> None:
    triggers = schedule("scheduler: {trigger: cron, year: 2030, week: 2, hour: 12}")

    times = upcoming(triggers, 10, NOW)

    assert [t.date().isoformat() for t in times] == [f"2030-01-{d:02}" for d in range(7, 14)]


def test_cron_mapping_form_counts_day_of_week_0_as_monday(schedule: Schedule) -> None:
    triggers = schedule("scheduler: {trigger: cron, day_of_week: 0, hour: 8}")

    times = upcoming(triggers, 3, NOW)

    assert {t.strftime("%A") for t in times} == {"Monday"}


def test_cron_start_end_and_jitter(schedule: Schedule) -> None:
    triggers = schedule(
        """
        scheduler:
          trigger: cron
          minute: "*"
          second: 0
          jitter: 20
          start_date: 2030-01-01 10:00:00
          end_date: 2030-01-01 10:05:00
        """
    )

    times = upcoming(triggers, 10, NOW)

    minutes = [t.replace(second=0, microsecond=0) for t in times]
    assert local(minutes, ZoneInfo("UTC")) == [f"Tue 2030-01-01 10:0{m}:00" for m in range(6)]
    assert all(0 <= (t - m).total_seconds() <= 20 for t, m in zip(times, minutes, strict=True))


# -- date ----------------------------------------------------------------------------------


def test_a_date_fires_once_in_the_task_timezone(schedule: Schedule) -> None:
    triggers = schedule(
        """
        timezone: Asia/Tokyo
        scheduler: {trigger: date, run_date: "2030-05-05 12:00:00"}
        """
    )

    assert upcoming(triggers, 5, NOW) == [datetime(2030, 5, 5, 3, 0, tzinfo=UTC)]


# -- several schedules, time zones, upcoming() ----------------------------------------------


def test_scheduler_and_schedules_combine(schedule: Schedule) -> None:
    triggers = schedule(
        """
        scheduler: {trigger: interval, hours: 12, start_date: "2030-01-01 00:00:00+00:00"}
        schedules:
          - {trigger: cron, hour: 3, minute: 15}
          - {trigger: date, run_date: "2030-01-01 06:00:00"}
        """
    )

    times = upcoming(triggers, 6, NOW)

    assert len(triggers) == 3
    assert local(times, ZoneInfo("UTC")) == [
        "Sat 2029-12-01 03:15:00",
        "Sun 2029-12-02 03:15:00",
        "Mon 2029-12-03 03:15:00",
        "Tue 2029-12-04 03:15:00",
        "Wed 2029-12-05 03:15:00",
        "Thu 2029-12-06 03:15:00",
    ]
    later = upcoming(triggers, 5, datetime(2029, 12, 31, 12, tzinfo=UTC))
    assert local(later, ZoneInfo("UTC")) == [
        "Tue 2030-01-01 00:00:00",
        "Tue 2030-01-01 03:15:00",
        "Tue 2030-01-01 06:00:00",
        "Tue 2030-01-01 12:00:00",
        "Wed 2030-01-02 00:00:00",
    ]


def test_cron_in_berlin_fires_at_local_time_across_the_dst_change(schedule: Schedule) -> None:
    triggers = schedule("scheduler: {trigger: cron, hour: 6, minute: 30, timezone: Europe/Berlin}")

    times = upcoming(triggers, 4, datetime(2030, 3, 29, 12, tzinfo=UTC))

    assert local(times, BERLIN) == [
        "Sat 2030-03-30 06:30:00",
        "Sun 2030-03-31 06:30:00",  # clocks went forward at 02:00 that night
        "Mon 2030-04-01 06:30:00",
        "Tue 2030-04-02 06:30:00",
    ]
    # (aware datetimes in one zone subtract as wall clocks; compare real elapsed time)
    assert times[1].astimezone(UTC) - times[0].astimezone(UTC) == timedelta(hours=23)


@pytest.mark.parametrize(
    ("yaml", "default_timezone", "zone"),
    [
        ("scheduler: {trigger: cron, hour: 6}", "UTC", ZoneInfo("UTC")),
        ("scheduler: {trigger: cron, hour: 6}", "Asia/Tokyo", TOKYO),
        ("timezone: Europe/Berlin\nscheduler: {trigger: cron, hour: 6}", "Asia/Tokyo", BERLIN),
        (
            "timezone: Europe/Berlin\nscheduler: {trigger: cron, hour: 6, timezone: Asia/Tokyo}",
            "UTC",
            TOKYO,
        ),
    ],
    ids=["server-default", "other-server-default", "task-timezone", "trigger-timezone"],
)
def test_the_nearest_timezone_decides_the_wall_clock(
    schedule: Schedule, yaml: str, default_timezone: str, zone: ZoneInfo
) -> None:
    times = upcoming(schedule(yaml, default_timezone), 2, NOW)

    assert [t.astimezone(zone).hour for t in times] == [6, 6]
    assert times[1] - times[0] == timedelta(days=1)


def test_schedules_with_different_timezones_keep_their_own(schedule: Schedule) -> None:
    triggers = schedule(
        """
        timezone: Europe/Berlin
        schedules:
          - {trigger: cron, hour: 9}
          - {trigger: cron, hour: 9, timezone: Asia/Tokyo}
        """
    )

    times = upcoming(triggers, 4, NOW)

    assert local(times, ZoneInfo("UTC")) == [
        "Sat 2029-12-01 00:00:00",  # 09:00 in Tokyo
        "Sat 2029-12-01 08:00:00",  # 09:00 in Berlin
        "Sun 2029-12-02 00:00:00",
        "Sun 2029-12-02 08:00:00",
    ]


def test_upcoming_merges_identical_times_once(schedule: Schedule) -> None:
    triggers = schedule(
        """
        scheduler: {trigger: cron, hour: 6, minute: 30, timezone: Europe/Berlin}
        schedules:
          - {trigger: cron, hour: 5, minute: 30}
          - {trigger: cron, minute: 30, hour: "5,17"}
        """
    )

    times = upcoming(triggers, 4, NOW)

    assert times == sorted(set(times))
    assert local(times, ZoneInfo("UTC")) == [
        "Sat 2029-12-01 05:30:00",
        "Sat 2029-12-01 17:30:00",
        "Sun 2029-12-02 05:30:00",
        "Sun 2029-12-02 17:30:00",
    ]


def test_upcoming_ends_when_every_schedule_ends(schedule: Schedule) -> None:
    triggers = schedule(
        """
        schedules:
          - {trigger: date, run_date: "2030-01-01 00:00:00"}
          - {trigger: cron, hour: 0, start_date: 2030-02-01, end_date: 2030-02-02 12:00:00}
        """
    )

    assert local(upcoming(triggers, 10, NOW), ZoneInfo("UTC")) == [
        "Tue 2030-01-01 00:00:00",
        "Fri 2030-02-01 00:00:00",
        "Sat 2030-02-02 00:00:00",
    ]


# -- in a running Tasse --------------------------------------------------------------------

PAST_DATE = "scheduler: {trigger: date, run_date: '2020-01-01 10:00:00'}\n"


@pytest.mark.anyio
async def test_a_past_date_is_not_scheduled(make_task: MakeTask, tasse: Tasse) -> None:
    make_task("once", yaml=PAST_DATE)
    make_task("mixed", yaml=PAST_DATE + "schedules: [{trigger: interval, hours: 1}]\n")
    await tasse.rescan()

    assert tasse.get_task("once").error is None
    assert tasse.get_task("once").next_run_at is None
    next_run = tasse.get_task("mixed").next_run_at
    assert next_run is not None
    assert next_run > datetime.now(UTC)


@pytest.mark.anyio
async def test_next_fires_does_not_list_a_past_date(make_task: MakeTask, tasse: Tasse) -> None:
    make_task("once", yaml=PAST_DATE)
    await tasse.rescan()

    assert await tasse.next_fires("once", 3) == []


@pytest.mark.anyio
async def test_a_running_tasse_shows_the_next_fire_of_a_cron_task(
    make_task: MakeTask, tasse: Tasse
) -> None:
    make_task(
        "daily", yaml="scheduler: {trigger: cron, hour: 6, minute: 30, timezone: Europe/Berlin}"
    )
    await tasse.rescan()

    fires = await tasse.next_fires("daily", 3)

    assert [t.astimezone(BERLIN).strftime("%H:%M") for t in fires] == ["06:30"] * 3
    assert tasse.get_task("daily").next_run_at == fires[0]
