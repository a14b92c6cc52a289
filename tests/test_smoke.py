import asyncio

import pytest

from tasse.models import RunRequest, RunStatus
from tasse.service import Tasse
from tests.conftest import MakeTask

pytestmark = pytest.mark.anyio


async def test_manual_run_succeeds_and_writes_its_log(make_task: MakeTask, settings) -> None:
    make_task("hello")
    tasse = Tasse(settings)
    await tasse.start()
    try:
        run = tasse.run_now("hello", RunRequest())
        for _ in range(100):
            if (await tasse.get_run(run.id)).status.is_final:
                break
            await asyncio.sleep(0.05)
        assert (await tasse.get_run(run.id)).status is RunStatus.succeeded
        assert (await tasse.read_log(run.id)) == b"hello\n"
    finally:
        await tasse.stop()
