"""Each event kind, one test each: the message a user gets, as a signed webhook received."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from tasse.models import RunRequest, RunStatus
from tasse.service import Tasse
from tests.conftest import MakeTask, history
from tests.notify.conftest import PUBLIC_URL
from tests.notify.receivers import Webhook
from tests.runs.test_runner import add_task, wait_final, wait_for_output

pytestmark = pytest.mark.anyio

FAILS = 'print("connecting to db.example.org"); print("boom: no route"); raise SystemExit(3)'


async def messages(hook: Webhook, count: int = 1, **match: Any) -> list[dict[str, Any]]:
    """The messages matching `match` (`events=[...]`, `task=...`), once `count` came."""

    def fits(message: dict[str, Any]) -> bool:
        return all(message.get(key) == value for key, value in match.items())

    return await asyncio.to_thread(hook.wait_for, count, 15.0, fits)


async def run_once(tasse: Tasse, name: str, **request: Any) -> str:
    run = tasse.run_now(name, RunRequest(**request))
    await wait_final(tasse, run.id)
    return run.id


async def test_a_failure_tells_task_run_reason_log_and_link(
    notified: Tasse, make_task: MakeTask, hook: Webhook
) -> None:
    await add_task(notified, make_task, "backup", script=FAILS)
    run_id = await run_once(notified, "backup")

    [message] = await messages(hook)
    assert message["title"] == "Tasse: backup failed"
    assert message["events"] == ["failed"]
    assert message["reason"] == "exited with code 3: boom: no route"  # its last line
    assert message["run"]["id"] == run_id
    assert message["run"]["status"] == "failed"
    assert message["url"] == f"{PUBLIC_URL}/runs/{run_id}"
    assert "boom: no route" in message["log_tail"]
    assert hook.rejected == 0  # signed with the shared secret, and fresh


async def test_a_timeout_is_told(notified: Tasse, make_task: MakeTask, hook: Webhook) -> None:
    await add_task(notified, make_task, "slow", "timeout: 0.5\n", "import time; time.sleep(30)")
    await run_once(notified, "slow")

    [message] = await messages(hook)
    assert message["events"] == ["timed_out"]
    assert message["title"] == "Tasse: slow timed out"
    assert "0.5" in message["reason"]


async def test_a_fire_missed_while_the_server_was_down_is_told(
    notified: Tasse, make_task: MakeTask, hook: Webhook
) -> None:
    await add_task(notified, make_task, "nightly", "catchup: none\n")
    due = notified.dispatcher.started_at - timedelta(hours=1)
    notified._on_fire("nightly", [due])  # as the scheduler calls it at start

    [message] = await messages(hook)
    assert message["events"] == ["missed"]
    assert message["title"] == "Tasse: nightly missed a fire"
    assert "the server was down" in message["reason"]


async def test_a_skipped_fire_is_told_only_when_asked(
    notified: Tasse, make_task: MakeTask, hook: Webhook
) -> None:
    script = "import time; print('up', flush=True); time.sleep(30)"
    quiet = await add_task(notified, make_task, "quiet", None, script)
    asking = await add_task(notified, make_task, "asking", "notify: {when: [skipped]}\n", script)
    for task in (quiet, asking):
        run = notified.run_now(task.name, RunRequest())
        await wait_for_output(notified, run.id, b"up")
        notified.dispatcher.fire(task, [notified.notifier.now()])

    [message] = await messages(hook)
    assert message["task"] == "asking"
    assert message["events"] == ["skipped"]
    assert "was still running" in message["reason"]


async def test_retries_used_up_are_told_once_not_per_attempt(
    notified: Tasse, make_task: MakeTask, hook: Webhook
) -> None:
    await add_task(notified, make_task, "flaky", "retries: 2\nretry_delay: 0\n", FAILS)
    notified.run_now("flaky", RunRequest())
    [message] = await messages(hook)
    await asyncio.sleep(0.5)

    assert message["events"] == ["failed", "retries_exhausted"]
    assert message["run"]["attempt"] == 3
    assert "failed on all 3 attempts" in message["details"]
    assert len(hook.received) == 1


async def test_the_first_success_after_failures_is_told_as_recovered(
    notified: Tasse, make_task: MakeTask, hook: Webhook
) -> None:
    script = "import pathlib; raise SystemExit(int(pathlib.Path('code').read_text()))"
    folder = make_task("sync", None, script, code="1")
    await add_task(notified, make_task, "sync", None, script, code="1")
    await run_once(notified, "sync")
    await run_once(notified, "sync")
    (folder / "code").write_text("0")
    await run_once(notified, "sync")
    await run_once(notified, "sync")  # a second success says nothing

    recovered = await messages(hook, events=["recovered"])
    await asyncio.sleep(0.3)
    assert recovered[0]["details"] == ["after 2 failure(s) in a row"]
    assert recovered[0]["reason"] == "succeeded again"
    assert [m["events"] for m in hook.received] == [["failed"], ["failed"], ["recovered"]]


async def test_n_failures_in_a_row_are_told_when_the_streak_reaches_n(
    notified: Tasse, make_task: MakeTask, hook: Webhook
) -> None:
    await add_task(notified, make_task, "etl", "notify: {when: [], after_failures: 2}\n", FAILS)
    for _ in range(3):
        await run_once(notified, "etl")

    [message] = await messages(hook)
    await asyncio.sleep(0.3)
    assert message["events"] == ["after_failures"]
    assert message["details"] == ["2 failures in a row"]
    assert len(hook.received) == 1  # once per streak, not at each further failure


async def test_a_success_is_told_only_when_asked(
    notified: Tasse, make_task: MakeTask, hook: Webhook
) -> None:
    await add_task(notified, make_task, "plain")
    await add_task(notified, make_task, "loud", "notify: {when: [succeeded]}\n")
    await run_once(notified, "plain")
    await run_once(notified, "loud")

    [message] = await messages(hook)
    await asyncio.sleep(0.3)
    assert message["task"] == "loud"
    assert message["events"] == ["succeeded"]
    assert len(hook.received) == 1


async def test_a_broken_environment_is_told_once(
    notified: Tasse, make_task: MakeTask, hook: Webhook
) -> None:
    await add_task(notified, make_task, "needs", None, "print(1)", requirements__txt="./nowhere\n")
    [message] = await messages(hook)
    notified._on_fire("needs", [notified.notifier.now()])  # fails for that reason: told once
    await asyncio.sleep(0.3)

    [fire] = await history(notified, "needs")
    assert fire.status is RunStatus.failed
    assert message["events"] == ["env_failed"]
    assert message["title"] == "Tasse: needs: its environment cannot be built"
    assert "failed to build" in message["reason"]
    assert message["url"] == f"{PUBLIC_URL}/tasks/needs"
    assert len(hook.received) == 1
