"""Pausing a task in a running Tasse: its fires are recorded `skipped` ("paused"), nothing starts
but what a person asks for, and resuming lets the schedule run it again."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tasse.errors import TaskNotFoundError
from tasse.models import RunRequest, RunStatus, RunTrigger
from tasse.runs.pauses import PausedTasks
from tasse.service import Tasse
from tasse.store.pauses import Pause
from tests.conftest import MakeTask, history
from tests.runs.test_dispatcher import wait_runs
from tests.runs.test_runner import add_task, wait_final

pytestmark = pytest.mark.anyio

#: appends a line to `ran.txt` beside its folder each time it really runs
COUNTER = """
import os, pathlib
with open(pathlib.Path.cwd().parent.parent / "ran.txt", "a") as counter:
    counter.write(os.environ["TASSE_TRIGGER"] + "\\n")
"""
EVERY_SECOND = "scheduler: {trigger: interval, seconds: 1}\n"


def ran(data_dir: Path) -> list[str]:
    counter = data_dir / "ran.txt"
    return counter.read_text().split() if counter.exists() else []


async def wait_for(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not so after {timeout} s"
        await asyncio.sleep(0.05)


async def test_a_paused_task_records_its_fires_as_skipped_and_runs_none(
    tasse: Tasse, make_task: MakeTask, data_dir: Path
) -> None:
    await add_task(tasse, make_task, "tick", EVERY_SECOND, script=COUNTER)
    shown = tasse.pause("tick")
    assert (shown.paused, shown.paused_reason) == (True, None)
    assert shown.paused_at is not None
    assert tasse.is_paused("tick")

    skipped = await wait_runs(tasse, "tick", 2, timeout=5)
    assert {(run.status, run.error, run.trigger) for run in skipped} == {
        (RunStatus.skipped, "paused", RunTrigger.schedule)
    }
    assert ran(data_dir) == []
    # The schedule goes on: the next fire is still computed and shown.
    info = tasse.get_task("tick")
    assert info.paused
    assert info.next_run_at is not None
    assert info.last_run is not None
    assert info.last_run.error == "paused"


async def test_resuming_runs_the_next_fires_and_catches_none_up(
    tasse: Tasse, make_task: MakeTask, data_dir: Path
) -> None:
    await add_task(tasse, make_task, "tick", EVERY_SECOND, script=COUNTER)
    tasse.pause("tick", "maintenance")
    await asyncio.sleep(2.5)
    shown = tasse.resume("tick")
    assert (shown.paused, shown.paused_at, shown.paused_reason) == (False, None, None)
    assert not tasse.is_paused("tick")

    await wait_for(lambda: len(ran(data_dir)) >= 2, timeout=5)
    assert set(ran(data_dir)) == {"schedule"}
    runs = await history(tasse, "tick")
    succeeded = [run for run in runs if run.status is RunStatus.succeeded]
    paused = [run for run in runs if run.error == "paused"]
    assert len(paused) >= 2
    # Nothing was caught up: each run came from a fire after the resume.
    assert min(run.scheduled_at for run in succeeded if run.scheduled_at) > max(
        run.scheduled_at for run in paused if run.scheduled_at
    )


async def test_pause_and_resume_are_idempotent(tasse: Tasse, make_task: MakeTask) -> None:
    await add_task(tasse, make_task, "job", None)
    first = tasse.pause("job", "first")
    again = tasse.pause("job", "second")
    assert again == first  # the same state: since the first pause, for its reason
    assert again.paused_reason == "first"
    assert not tasse.resume("job").paused
    assert not tasse.resume("job").paused


async def test_a_manual_run_of_a_paused_task_runs(
    tasse: Tasse, make_task: MakeTask, data_dir: Path
) -> None:
    await add_task(tasse, make_task, "job", None, script=COUNTER)
    tasse.pause("job")
    run = await wait_final(tasse, tasse.run_now("job", RunRequest()).id)
    assert run.status is RunStatus.succeeded
    assert ran(data_dir) == ["manual"]


async def test_a_retry_waiting_when_its_task_is_paused_does_not_start(
    tasse: Tasse, make_task: MakeTask, data_dir: Path
) -> None:
    script = COUNTER + "raise SystemExit(1)\n"
    await add_task(tasse, make_task, "flaky", "retries: 2\nretry_delay: 1", script=script)
    first = await wait_final(tasse, tasse.run_now("flaky", RunRequest()).id)
    assert first.status is RunStatus.failed
    [retry] = [r for r in await history(tasse, "flaky") if r.trigger is RunTrigger.retry]
    assert retry.status is RunStatus.queued
    tasse.pause("flaky")

    ended = await wait_final(tasse, retry.id, timeout=5)
    assert (ended.status, ended.error, ended.started_at) == (RunStatus.skipped, "paused", None)
    await asyncio.sleep(0.5)
    assert ran(data_dir) == ["manual"]  # the retry's process never started
    assert len(await history(tasse, "flaky")) == 2  # and a skipped retry is not retried


async def test_pausing_an_unknown_task_is_not_found(tasse: Tasse) -> None:
    with pytest.raises(TaskNotFoundError, match="'ghost'"):
        tasse.pause("ghost")
    with pytest.raises(TaskNotFoundError, match="'ghost'"):
        tasse.resume("ghost")


async def test_a_pause_is_kept_in_the_store_and_loaded_at_start(
    tasse: Tasse, make_task: MakeTask
) -> None:
    await add_task(tasse, make_task, "job", None)
    paused_at = tasse.pause("job", "why").paused_at
    assert await asyncio.to_thread(tasse.records.wait_written, 10)
    again = PausedTasks(tasse.store, tasse.records)  # as the next start loads them
    await asyncio.to_thread(again.load)
    pause = again.get("job")
    assert pause is not None
    assert (pause.paused_at, pause.reason) == (paused_at, "why")
    assert pause.paused_at.tzinfo is not None
    assert paused_at is not None
    assert paused_at <= datetime.now(UTC)


async def test_a_folder_removed_and_added_again_is_still_paused(
    tasse: Tasse, make_task: MakeTask
) -> None:
    task = await add_task(tasse, make_task, "job", None)
    tasse.pause("job")
    shutil.rmtree(task.folder)
    await tasse.rescan()
    with pytest.raises(TaskNotFoundError):
        tasse.get_task("job")
    await add_task(tasse, make_task, "job", None)
    assert tasse.get_task("job").paused  # the pause is the name's, not the folder's


async def test_pauses_another_node_made_are_taken_in_and_an_unsaved_own_one_is_kept(
    tasse: Tasse,
) -> None:
    pauses = tasse.pauses
    theirs = Pause(datetime(2026, 1, 1, tzinfo=UTC), "by node b")
    mine = pauses.pause("mine")  # this node's: its write may not be in the store yet

    assert pauses.follow({"theirs": theirs}) == ["theirs"]  # the store as read meanwhile
    assert pauses.is_paused("mine")
    assert pauses.get("theirs") == theirs

    assert pauses.follow({"theirs": theirs, "mine": mine}) == []  # its own write landed
    assert pauses.follow({"mine": mine}) == ["theirs"]  # node b resumed it
    assert pauses.is_paused("mine")
    assert not pauses.is_paused("theirs")
    assert pauses.follow({}) == ["mine"]  # and then resumed this one
    assert not pauses.is_paused("mine")
