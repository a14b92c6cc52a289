"""What the scheduler fires across a clock change is what the listing lists, and what
Debian's cron runs: APScheduler's own AsyncIOScheduler, its clock driven by the test.

The test moves the clock APScheduler reads (`datetime.now` in apscheduler.schedulers.base)
and wakes the scheduler when it asked to be woken (plus a latency), through its own
`wakeup` → `_process_jobs` path: it asks each trigger `get_next_fire_time` with its own
arguments, collects due times into batches and hands them to Tasse's executor.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import apscheduler.schedulers.base
import pytest

from tasse.runs.policies import Policy, decide_fires
from tasse.schedule.cronline import parse_line
from tasse.schedule.mapping import CronMappingTrigger
from tasse.schedule.scheduler import Scheduler
from tasse.schedule.specs import CronSpec, IntervalSpec
from tasse.schedule.triggers import Schedule, make_trigger
from tests.schedule.cron_reference import cron_loop, job_runs, reference_runs
from tests.schedule.test_mapping import matcher

pytestmark = pytest.mark.anyio


@dataclass
class Clock:
    """The time APScheduler sees."""

    at: datetime


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(datetime(2000, 1, 1, tzinfo=UTC))

    class Now(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return clock.at.astimezone(tz) if tz is not None else clock.at.replace(tzinfo=None)

    monkeypatch.setattr(apscheduler.schedulers.base, "datetime", Now)
    return clock


@dataclass
class Fired:
    """What the scheduler handed to Tasse: each call's task name and due times."""

    calls: list[tuple[str, list[datetime]]] = field(default_factory=list)

    def __call__(self, name: str, due: list[datetime]) -> None:
        self.calls.append((name, list(due)))

    def times(self, name: str) -> list[datetime]:
        return [t.astimezone(UTC) for called, due in self.calls if called == name for t in due]


async def run_until(scheduler: Scheduler, clock: Clock, until: datetime, late: timedelta) -> None:
    """AsyncIOScheduler's loop on the test's clock: each wake-up `late` after it was asked for."""
    aps: Any = scheduler._aps
    waits: list[float | None] = []
    aps._start_timer = waits.append  # where it would arm its timer (call_later)
    while True:
        aps.wakeup()  # its own wake-up, as the timer would call it
        await asyncio.sleep(0)  # (wakeup runs on the loop: run_in_event_loop)
        wait = waits[-1]
        if wait is None:
            return
        moment = clock.at + timedelta(seconds=wait) + late
        if moment >= until:
            return
        clock.at = moment


NIGHTS = {
    # (zone, start, end): spring forward and fall back, a few hours either side
    "berlin-spring": ("Europe/Berlin", datetime(2025, 3, 29, 21, tzinfo=UTC)),
    "berlin-autumn": ("Europe/Berlin", datetime(2025, 10, 25, 21, tzinfo=UTC)),
    "new-york-spring": ("America/New_York", datetime(2026, 3, 8, 3, tzinfo=UTC)),
    "new-york-autumn": ("America/New_York", datetime(2026, 11, 1, 2, tzinfo=UTC)),
    "lord-howe-spring": ("Australia/Lord_Howe", datetime(2025, 10, 4, 12, tzinfo=UTC)),
}
LINES = ["0,30 2 * * *", "30 * * * *", "0 */2 * * *", "0 0-23 * * *", "0 1,2 * * *", "@daily"]
MAPPINGS: list[Schedule] = [
    CronSpec(trigger="cron", hour="2", minute="0,30"),
    CronSpec(trigger="cron", minute="*/20"),
    CronSpec(trigger="cron", hour="0"),
    IntervalSpec(trigger="interval", minutes=45, start_date=datetime(2025, 1, 1, tzinfo=UTC)),
]


@pytest.mark.parametrize("late", [timedelta(0), timedelta(milliseconds=3)], ids=["on-time", "late"])
@pytest.mark.parametrize("night", list(NIGHTS))
async def test_the_scheduler_fires_what_is_listed_and_what_debian_runs(
    clock: Clock, night: str, late: timedelta
) -> None:
    zone_name, start = NIGHTS[night]
    zone, until = ZoneInfo(zone_name), start + timedelta(hours=10)
    clock.at = start + timedelta(microseconds=1)  # (the replay lists runs after `start`)
    fired = Fired()
    scheduler = Scheduler(fired, zone_name)
    schedules: dict[str, tuple[Schedule, float | None]] = {
        f"s{index}": (schedule, None) for index, schedule in enumerate([*LINES, *MAPPINGS])
    }
    schedules["jittered"] = ("0,30 2 * * *", 900.0)
    scheduler.start()
    try:
        triggers = {name: make_trigger(s, zone, jitter) for name, (s, jitter) in schedules.items()}
        for name, trigger in triggers.items():
            scheduler.schedule(name, [trigger])
        listed = {
            name: [t.astimezone(UTC) for t in scheduler.upcoming(name, 50) if t < until]
            for name in schedules
        }
        await run_until(scheduler, clock, until, late)
    finally:
        scheduler.shutdown()
    for name, (schedule, _) in schedules.items():
        assert fired.times(name) == listed[name], (name, schedule)
        assert len(listed[name]) > 0, (name, schedule)
        if name == "jittered" or isinstance(schedule, IntervalSpec):
            continue
        if isinstance(schedule, str):
            runs = reference_runs(parse_line(schedule), zone, start, until)
        else:  # a mapping: its own fields match, its hour, minute and second make it wild
            trigger = triggers[name]
            assert isinstance(trigger, CronMappingTrigger)
            lookups = cron_loop(zone, start, until, 60)
            runs = job_runs(matcher(trigger), trigger.wildcard, lookups)
        assert fired.times(name) == [run for run in runs if run < until], (name, schedule)


async def test_each_catch_up_of_a_skipped_time_is_handed_over_and_runs(clock: Clock) -> None:
    zone = ZoneInfo("Europe/Berlin")
    start = clock.at = datetime(2025, 3, 29, 23, tzinfo=UTC)
    fired = Fired()
    scheduler = Scheduler(fired, "Europe/Berlin")
    scheduler.start()
    try:
        scheduler.schedule("twice", [make_trigger("0,30 2 * * *", zone)])
        await run_until(scheduler, clock, start + timedelta(hours=3), timedelta(milliseconds=3))
    finally:
        scheduler.shutdown()
    jump = datetime(2025, 3, 30, 1, tzinfo=UTC)  # 02:00 → 03:00 local
    # one wake-up, a few milliseconds late: both skipped times come due at once...
    [(name, due)] = fired.calls
    assert name == "twice"
    assert [t.astimezone(UTC) for t in due] == [jump, jump + timedelta(microseconds=1)]
    # ...and both run (not coalesced, as a backlog of a busy server would be)
    now = jump + timedelta(milliseconds=3)
    decision = decide_fires(due, now, start, Policy())
    assert decision.run == due
    assert decision.not_run == []
