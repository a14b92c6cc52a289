"""`--max-concurrent-runs`: beyond the limit runs wait, queued, and none is lost."""

from __future__ import annotations

import asyncio

import pytest

from tasse.models import Run, RunRequest, RunStatus
from tasse.runs.slots import RunSlots
from tasse.service import Tasse
from tasse.settings import Settings
from tests.conftest import MakeTask, history
from tests.runs.test_runner import add_task, wait_final

pytestmark = pytest.mark.anyio

SLOW = "import time; time.sleep(0.6); print('done')"


@pytest.fixture
def settings(data_dir: object) -> Settings:
    return Settings(data_dir=data_dir, kill_grace=1.0, max_concurrent_runs=2, _env_file=None)


async def test_runs_beyond_the_limit_wait_queued_and_all_finish(
    tasse: Tasse, make_task: MakeTask
) -> None:
    for index in range(5):
        await add_task(tasse, make_task, f"slow{index}", script=SLOW)
    runs = [tasse.run_now(f"slow{index}", RunRequest()) for index in range(5)]
    await asyncio.sleep(0.2)

    states = [(await tasse.get_run(run.id)).status for run in runs]
    assert states.count(RunStatus.running) == 2, states
    assert states.count(RunStatus.queued) == 3, states

    finished = [await wait_final(tasse, run.id, timeout=15) for run in runs]
    assert [run.status for run in finished] == [RunStatus.succeeded] * 5
    # Never more than two at once: each run started after some earlier one ended.
    spans = sorted((run.started_at, run.finished_at) for run in finished)
    for index, (started, _) in enumerate(spans):
        alive = [span for span in spans[:index] if span[1] is not None and span[1] > started]
        assert len(alive) < 2, spans


async def test_a_queued_run_can_be_cancelled_and_frees_nothing_it_did_not_hold(
    tasse: Tasse, make_task: MakeTask
) -> None:
    for index in range(3):
        await add_task(tasse, make_task, f"slow{index}", script=SLOW)
    runs = [tasse.run_now(f"slow{index}", RunRequest()) for index in range(3)]
    await asyncio.sleep(0.2)
    assert (await tasse.get_run(runs[2].id)).status is RunStatus.queued

    cancelled = await tasse.cancel_run(runs[2].id)
    assert cancelled.status is RunStatus.cancelled
    for run in runs[:2]:
        assert (await wait_final(tasse, run.id)).status is RunStatus.succeeded
    # The two slots are whole again: two new runs start at once.
    again = [tasse.run_now(f"slow{index}", RunRequest()) for index in range(2)]
    await asyncio.sleep(0.2)
    assert [(await tasse.get_run(run.id)).status for run in again] == [RunStatus.running] * 2
    for run in again:
        await wait_final(tasse, run.id)


async def test_the_answer_says_queued_when_no_slot_is_free(
    tasse: Tasse, make_task: MakeTask
) -> None:
    for index in range(3):
        await add_task(tasse, make_task, f"slow{index}", script=SLOW)
    await wait_final(tasse, tasse.run_now("slow0", RunRequest()).id, timeout=30)  # env built

    answers = [tasse.run_now(f"slow{index}", RunRequest()) for index in range(3)]
    assert [run.status for run in answers] == [RunStatus.running] * 2 + [RunStatus.queued]
    assert answers[2].started_at is None
    [stored] = [run for run in (await history(tasse, "slow2")) if run.id == answers[2].id]
    assert stored.status is RunStatus.queued  # listed before it starts
    started = await wait_final(tasse, answers[2].id, timeout=15)
    ends = [run.finished_at for run in await _finals(tasse, answers[:2]) if run.finished_at]
    assert started.started_at is not None
    assert started.started_at >= min(ends)


async def _finals(tasse: Tasse, runs: list[Run]) -> list[Run]:
    return [await wait_final(tasse, run.id) for run in runs]


async def test_slots_go_in_order_and_a_waiter_that_stops_gives_its_turn_on() -> None:
    slots = RunSlots(1)
    assert slots.try_take()
    first = asyncio.ensure_future(slots.take())
    second = asyncio.ensure_future(slots.take())
    await asyncio.sleep(0)
    assert not slots.try_take()  # nobody jumps the line
    first.cancel()
    slots.release()
    await asyncio.sleep(0)
    assert second.done()
    assert first.cancelled()
    slots.release()
    assert slots.try_take()
