"""A restart after long downtime: every missed fire recorded, the log says so in one line."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from tasse.models import RunStatus
from tasse.runs.fire_decisions import DOWNTIME_GATHER
from tasse.service import Tasse
from tasse.settings import Settings
from tasse.store.fire_times import FireTimes
from tasse.store.runs import RunStore
from tests.conftest import MakeTask

pytestmark = pytest.mark.anyio

EVERY_MINUTE = 'schedule: "* * * * *"\n'
DOWN = timedelta(hours=3)


def _pretend_down_since(settings: Settings, down: timedelta) -> None:
    """Move every stored next fire time back, as if the server had stopped `down` ago."""
    store = RunStore(settings.store_url)
    try:
        times = FireTimes(store)
        stored = times.load()
        assert stored, "the first server stored no fire times"
        times.save({job: (mark, at - down) for job, (mark, at) in stored.items() if at})
    finally:
        store.close()


async def test_a_restart_after_hours_down_logs_one_summary_line(
    settings: Settings, make_task: MakeTask, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("alpha", "beta"):
        make_task(name, EVERY_MINUTE)
    first = Tasse(settings)
    await first.start()
    await first.stop()
    _pretend_down_since(settings, DOWN)

    caplog.set_level(logging.INFO, logger="tasse")
    second = Tasse(settings)
    await second.start()
    try:
        await asyncio.sleep(DOWNTIME_GATHER + 0.5)
        assert await asyncio.to_thread(second.records.wait_written, 10)
        missed = {name: second.store.for_task(name, 200) for name in ("alpha", "beta")}
    finally:
        await second.stop()

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    about_downtime = [line for line in warnings if "while the server was down" in line]
    assert len(about_downtime) == 1, warnings
    # ~180 fires of each task; one of each is caught up (`catchup: latest`)
    line = about_downtime[0]
    assert "of 2 task(s)" in line
    assert "2 caught up" in line
    count = int(line.split(" fire time(s)")[0])
    assert 2 * 178 <= count <= 2 * 182, line
    assert not [w for w in warnings if ": fire at " in w], "a warning per missed fire"
    for name, runs in missed.items():
        assert sum(r.status is RunStatus.missed for r in runs) >= 100, name
