"""`--max-concurrent-runs`: beyond the limit runs wait, queued, and none is lost."""

from __future__ import annotations

import asyncio

import pytest

from tasse.models import RunRequest, RunStatus
from tasse.service import Tasse
from tasse.settings import Settings
from tests.conftest import MakeTask
from tests.test_runner import add_task, wait_final

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

    states = [tasse.get_run(run.id).status for run in runs]
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
    assert tasse.get_run(runs[2].id).status is RunStatus.queued

    cancelled = await tasse.cancel_run(runs[2].id)
    assert cancelled.status is RunStatus.cancelled
    for run in runs[:2]:
        assert (await wait_final(tasse, run.id)).status is RunStatus.succeeded
    # The two slots are whole again: two new runs start at once.
    again = [tasse.run_now(f"slow{index}", RunRequest()) for index in range(2)]
    await asyncio.sleep(0.2)
    assert [tasse.get_run(run.id).status for run in again] == [RunStatus.running] * 2
    for run in again:
        await wait_final(tasse, run.id)
