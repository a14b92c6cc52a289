"""Restarts: fires due while the server was down are recorded missed; leftovers are stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tasse.models import RunStatus
from tasse.service import Tasse
from tasse.settings import Settings
from tasse.store.fire_times import FireTimes
from tasse.store.runs import RunStore
from tests.conftest import MakeTask
from tests.http.test_api import wait_until
from tests.ports import free_port

pytestmark = pytest.mark.anyio

EVERY_SECOND = 'schedule: "* * * * * *"\n'


async def _run_for(settings: Settings, seconds: float) -> None:
    service = Tasse(settings)
    await service.start()
    try:
        await asyncio.sleep(seconds)
    finally:
        await service.stop()


def _runs(settings: Settings, task: str) -> list[tuple[RunStatus, str | None]]:
    store = RunStore(settings.store_url)
    try:
        return [(run.status, run.error) for run in store.for_task(task, 200)]
    finally:
        store.close()


async def test_fires_due_while_the_server_was_down_are_recorded_as_missed(
    settings: Settings, make_task: MakeTask
) -> None:
    make_task("tick", EVERY_SECOND)
    await _run_for(settings, 1.5)
    before = len(_runs(settings, "tick"))
    await asyncio.sleep(3.2)  # the server is down for three fire times or more
    await _run_for(settings, 0.6)

    runs = _runs(settings, "tick")[: len(_runs(settings, "tick")) - before]
    missed = [error for status, error in runs if status is RunStatus.missed]
    assert len(missed) >= 2, runs
    assert all("the server was down" in (error or "") for error in missed)


@pytest.mark.parametrize("schedule", [EVERY_SECOND, "scheduler: {trigger: interval, seconds: 1}\n"])
async def test_catchup_all_runs_each_fire_missed_while_down_in_turn(
    settings: Settings, make_task: MakeTask, schedule: str
) -> None:
    make_task("diligent", schedule + "catchup: all\n", script="print('caught')")
    await _run_for(settings, 1.5)
    stopped = time.time()
    await asyncio.sleep(3.2)  # three fire times or more come due while it is down
    await _run_for(settings, 2.5)

    store = RunStore(settings.store_url)
    try:
        runs = store.for_task("diligent", 200)
    finally:
        store.close()
    while_down = [
        run
        for run in runs
        if run.scheduled_at and stopped < run.scheduled_at.timestamp() < stopped + 3
    ]
    assert len(while_down) >= 2, runs
    assert {run.status for run in while_down} == {RunStatus.succeeded}, while_down
    assert {run.trigger.value for run in while_down} == {"schedule"}


async def test_a_changed_schedule_starts_afresh(settings: Settings, make_task: MakeTask) -> None:
    folder = make_task("tick", EVERY_SECOND)
    await _run_for(settings, 1.5)
    (folder / "task.yaml").write_text('schedule: "0 0 1 1 *"\n')  # once a year now
    await asyncio.sleep(2.5)
    await _run_for(settings, 0.5)

    statuses = [status for status, _ in _runs(settings, "tick")]
    assert RunStatus.missed not in statuses  # the old schedule's times were not carried over


async def test_a_removed_task_leaves_no_stored_fire_times(
    settings: Settings, make_task: MakeTask
) -> None:
    make_task("gone", EVERY_SECOND)
    make_task("stays", EVERY_SECOND)
    service = Tasse(settings)
    await service.start()
    try:
        await asyncio.sleep(1.3)
        for path in (settings.tasks_dir / "gone").iterdir():
            path.unlink()
        (settings.tasks_dir / "gone").rmdir()
        await service.rescan()
    finally:
        await service.stop()
    store = RunStore(settings.store_url)
    try:
        stored = FireTimes(store).load()
    finally:
        store.close()
    assert set(stored) == {"stays#0"}


def test_a_fire_that_ran_before_a_crash_does_not_run_again(tmp_path: Path) -> None:
    # SIGKILL: no clean stop stores anything; what was stored before each fire must do.
    data = tmp_path / "data"
    task = data / "tasks" / "hourly"
    task.mkdir(parents=True)
    (task / "task.py").write_text("print('ran')\n")
    (task / "task.yaml").write_text(EVERY_SECOND)
    port = free_port()
    argv = [sys.executable, "-m", "tasse", "serve", "--data-dir", str(data)]
    argv += ["--http-listen-address", f"127.0.0.1:{port}"]
    env = {**os.environ, "TASSE_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(_runs(Settings(data_dir=data, _env_file=None), "hourly")) >= 2)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
    settings = Settings(data_dir=data, _env_file=None)
    ran_before = {run for run in _scheduled(settings) if run[1] != RunStatus.missed}
    time.sleep(0.2)
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(_scheduled(settings)) >= len(ran_before) + 2)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    times = [at for at, _ in _scheduled(settings)]
    assert len(times) == len(set(times)), "a fire time was recorded twice"


def _scheduled(settings: Settings) -> list[tuple[str, RunStatus]]:
    store = RunStore(settings.store_url)
    try:
        runs = store.for_task("hourly", 500)
    finally:
        store.close()
    return [(run.scheduled_at.isoformat() if run.scheduled_at else "", run.status) for run in runs]


async def test_a_task_disabled_for_a_while_is_not_taken_for_missed_fires(
    settings: Settings, make_task: MakeTask
) -> None:
    folder = make_task("paused", EVERY_SECOND)
    await _run_for(settings, 1.3)
    (folder / "task.yaml").write_text("enabled: false\n" + EVERY_SECOND)
    await _run_for(settings, 2.5)  # running, with the task disabled
    (folder / "task.yaml").write_text(EVERY_SECOND)
    await _run_for(settings, 1.3)

    statuses = [status for status, _ in _runs(settings, "paused")]
    assert RunStatus.missed not in statuses, statuses


def test_the_fingerprint_changes_with_zone_and_dates() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from apscheduler.triggers.interval import IntervalTrigger

    from tasse.schedule.triggers import crontab_trigger, fingerprint

    assert fingerprint(crontab_trigger("0 9 * * *", "UTC")) != fingerprint(
        crontab_trigger("0 9 * * *", "Asia/Tokyo")
    )
    start = datetime(2030, 1, 1, tzinfo=ZoneInfo("UTC"))
    assert fingerprint(IntervalTrigger(minutes=5, start_date=start)) != fingerprint(
        IntervalTrigger(minutes=5, start_date=start.replace(year=2031))
    )


def test_a_run_left_behind_by_a_killed_server_is_stopped_at_the_next_start(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    task = data / "tasks" / "long"
    task.mkdir(parents=True)
    (task / "task.py").write_text(
        "import os, time\nopen('pid', 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    )
    port = free_port()
    argv = [sys.executable, "-m", "tasse", "serve", "--data-dir", str(data)]
    argv += ["--http-listen-address", f"127.0.0.1:{port}"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    server = subprocess.Popen(argv, **quiet)  # type: ignore[call-overload]
    try:
        wait_until(lambda: _post(port, "/tasks/long/run") == 202, timeout=20)
        wait_until(lambda: (task / "pid").exists())
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
    pid = int((task / "pid").read_text())
    assert _alive(pid)  # the server's death did not end it

    server = subprocess.Popen(argv, **quiet)  # type: ignore[call-overload]
    try:
        wait_until(lambda: not _alive(pid), timeout=20)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    statuses = [status for status, _ in _runs(Settings(data_dir=data, _env_file=None), "long")]
    assert statuses == [RunStatus.interrupted]


def _post(port: int, path: str) -> int:
    import httpx

    try:
        return httpx.post(f"http://127.0.0.1:{port}{path}", timeout=5).status_code
    except httpx.TransportError:
        return 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
