"""Fires and run requests → runs: one at a time per task, every intended fire time recorded."""

from __future__ import annotations

import asyncio
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tasse.errors import TaskBusyError
from tasse.models import Run, RunRequest, RunStatus, RunTrigger, new_run_id
from tasse.service import Tasse
from tasse.settings import Settings
from tasse.store.runs import RunStore
from tasse.tasks.task import Task
from tests.conftest import MakeTask, history, stored
from tests.runs.test_runner import (
    KILL_GRACE,
    SLACK,
    add_task,
    wait_final,
    wait_for_output,
    wait_gone,
)

pytestmark = pytest.mark.anyio

#: prints its pid, then runs far longer than any test
LONG = "import os, time; print(os.getpid(), flush=True); time.sleep(30)"
#: reports why and for when it was started
REPORT = "import os; print(os.environ['TASSE_TRIGGER'], os.environ['TASSE_SCHEDULED_AT'])"


async def start_long_run(tasse: Tasse, make_task: MakeTask, name: str = "long") -> tuple[Task, Run]:
    """Load a long-running task and start it; return once its process is up."""
    task = await add_task(tasse, make_task, name, script=LONG)
    run = tasse.run_now(name, RunRequest())
    await wait_for_output(tasse, run.id, b"\n")
    return task, run


async def wait_runs(tasse: Tasse, name: str, count: int, timeout: float = 10) -> list[Run]:
    """Poll the history until the task has `count` recorded runs; return them, newest first."""
    deadline = time.monotonic() + timeout
    while len(runs := (await history(tasse, name))) < count:
        assert time.monotonic() < deadline, f"{name} has {len(runs)} runs after {timeout} s"
        await asyncio.sleep(0.02)
    return runs


# -- fires -------------------------------------------------------------------------------------


async def test_a_fire_while_the_task_runs_is_recorded_as_skipped(
    tasse: Tasse, make_task: MakeTask
) -> None:
    task, running = await start_long_run(tasse, make_task)
    due = datetime.now(UTC)
    tasse.dispatcher.fire(task, [due])

    skipped = await history(tasse, "long", status=RunStatus.skipped)
    assert len(skipped) == 1
    assert skipped[0].trigger is RunTrigger.schedule
    assert skipped[0].scheduled_at == due
    assert skipped[0].error is not None
    assert running.id in skipped[0].error
    assert (await tasse.get_run(running.id)).status is RunStatus.running


async def test_a_fire_beyond_the_grace_time_is_recorded_as_missed(
    tasse: Tasse, make_task: MakeTask, settings: Settings
) -> None:
    task = await add_task(tasse, make_task, "late")
    due = datetime.now(UTC) - timedelta(seconds=settings.misfire_grace_time + 30)
    tasse.dispatcher.started_at = due - timedelta(seconds=1)  # it was up, but busy
    tasse.dispatcher.fire(task, [due])

    [missed] = await history(tasse, "late")
    assert missed.status is RunStatus.missed
    assert missed.scheduled_at == due
    assert missed.error is not None
    assert "late" in missed.error
    assert not (settings.logs_dir / "late" / "runs").exists()
    tasse.run_now("late", RunRequest())  # nothing was left running


async def test_of_several_due_times_the_latest_runs_and_the_rest_are_coalesced(
    tasse: Tasse, make_task: MakeTask
) -> None:
    task = await add_task(tasse, make_task, "burst", script=REPORT)
    latest = datetime.now(UTC) - timedelta(seconds=5)  # late, but well within the grace time
    earlier = [latest - timedelta(seconds=2), latest - timedelta(seconds=1)]
    tasse.dispatcher.started_at = earlier[0] - timedelta(seconds=1)  # up, but busy
    tasse.dispatcher.fire(task, [*earlier, latest])

    runs = await wait_runs(tasse, "burst", 3)
    merged = [run for run in runs if run.status is RunStatus.coalesced]
    assert sorted(run.scheduled_at for run in merged if run.scheduled_at) == earlier
    assert all(run.error and latest.isoformat() in run.error for run in merged)
    [ran] = [run for run in runs if run.status is not RunStatus.coalesced]
    ran = await wait_final(tasse, ran.id)
    assert ran.status is RunStatus.succeeded
    assert ran.scheduled_at == latest
    trigger, scheduled_at = (await tasse.read_log(ran.id)).decode().split()
    assert trigger == "schedule"
    assert datetime.fromisoformat(scheduled_at) == latest


async def test_a_manual_run_while_running_is_refused(tasse: Tasse, make_task: MakeTask) -> None:
    _, running = await start_long_run(tasse, make_task)
    with pytest.raises(TaskBusyError, match=running.id):
        tasse.run_now("long", RunRequest())
    assert [run.id for run in (await history(tasse, "long"))] == [running.id]


async def test_an_interval_task_runs_on_its_own(tasse: Tasse, make_task: MakeTask) -> None:
    yaml = "scheduler: {trigger: interval, seconds: 1}"
    await add_task(tasse, make_task, "ticker", yaml, REPORT)
    assert tasse.get_task("ticker").next_run_at is not None

    [first, *_] = reversed(await wait_runs(tasse, "ticker", 1, timeout=3))
    run = await wait_final(tasse, first.id)
    assert run.status is RunStatus.succeeded
    assert run.trigger is RunTrigger.schedule
    assert (await tasse.read_log(run.id)).startswith(b"schedule ")


# -- stopping and restarting ---------------------------------------------------------------------


async def test_stopping_the_server_cancels_a_live_run(
    settings: Settings, make_task: MakeTask
) -> None:
    service = Tasse(settings)
    await service.start()
    try:
        _, running = await start_long_run(service, make_task)
        pid = int(await service.read_log(running.id))
    finally:
        began = time.monotonic()
        await service.stop()
    assert time.monotonic() - began < KILL_GRACE + SLACK
    assert await wait_gone(pid)

    store = RunStore(settings.store_url)
    try:
        recorded = store.get(running.id)
    finally:
        store.close()
    assert recorded is not None
    assert recorded.status is RunStatus.cancelled
    assert recorded.finished_at is not None


def record_unfinished_run(settings: Settings, task: str) -> Run:
    """Leave a `running` run in the store, as a server killed mid-run would."""
    now = datetime.now(UTC)
    run = Run(
        id=new_run_id(now),
        task=task,
        trigger=RunTrigger.schedule,
        status=RunStatus.running,
        scheduled_at=now,
        started_at=now,
    )
    store = RunStore(settings.store_url)
    try:
        store.add(run)
    finally:
        store.close()
    return run


async def test_a_run_left_running_by_an_unclean_stop_is_interrupted(
    settings: Settings, make_task: MakeTask
) -> None:
    make_task("nightly")
    left = record_unfinished_run(settings, "nightly")
    service = Tasse(settings)
    await service.start()
    try:
        run = await service.get_run(left.id)
        assert run.status is RunStatus.interrupted
        assert run.finished_at is not None
        assert run.error is not None
        assert "stopped" in run.error
        assert [r.status for r in await service.list_runs("nightly", 10)] == [RunStatus.interrupted]
        # the task itself shows it too, not the stale `running` read before recovery
        last_run = service.get_task("nightly").last_run
        assert last_run is not None
        assert last_run.id == left.id
        assert last_run.status is RunStatus.interrupted
    finally:
        await service.stop()


# -- faults ------------------------------------------------------------------------------------


async def test_a_run_that_cannot_write_its_log_fails_clearly_and_frees_the_task(
    tasse: Tasse, make_task: MakeTask, data_dir: Path
) -> None:
    await add_task(tasse, make_task, "hello", script="print('hi')")
    logs = data_dir / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.write_text("a file where the log folder should be\n")

    run = await wait_final(tasse, tasse.run_now("hello", RunRequest()).id)

    assert run.status is RunStatus.failed
    assert run.error is not None
    assert "could not carry out" in run.error
    assert (await stored(tasse, run.id)) == run
    logs.unlink()
    again = await wait_final(tasse, tasse.run_now("hello", RunRequest()).id)
    assert again.status is RunStatus.succeeded


@pytest.mark.slow
async def test_after_a_stall_the_current_fire_runs_not_a_stale_one(
    tasse: Tasse, make_task: MakeTask
) -> None:
    """A loop held up for 4 s: the fire that runs next is the one due now, the rest coalesced."""
    await add_task(tasse, make_task, "tick", "scheduler: {trigger: interval, seconds: 1}\n")
    await wait_runs(tasse, "tick", 2)
    stalled_from = datetime.now(UTC)
    time.sleep(4)  # on the loop: nothing fires, nothing answers, as in a stall
    stalled_until = datetime.now(UTC)
    await asyncio.sleep(2.5)
    runs = await history(tasse, "tick")
    # The fires due during the stall and after it (not the one launched as it began).
    after = [r for r in runs if r.scheduled_at is not None and r.scheduled_at > stalled_from]
    ran = sorted((r for r in after if r.status is not RunStatus.coalesced), key=lambda r: r.id)
    assert ran, "nothing ran after the stall"
    assert ran[0].scheduled_at is not None
    assert stalled_until - ran[0].scheduled_at < timedelta(seconds=1.5), ran[0]
    assert sum(r.status is RunStatus.coalesced for r in after) >= 2
    # …and the fires after it run as usual, none skipped for the stale one.
    assert not any(r.status is RunStatus.skipped for r in after)
