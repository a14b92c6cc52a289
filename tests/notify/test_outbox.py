"""Never lost, never twice: a receiver that is down gets the message once it is back, across a
restart; a journal replayed over rows written since sends nothing again."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tasse.models import Run, RunStatus, RunTrigger
from tasse.service import Tasse
from tasse.store.journal import Journal
from tasse.store.outbox import Notice, NoticeStatus, OutboxTable
from tasse.store.records import Notices, Runs, entry_of
from tasse.store.runs import RunStore
from tests.conftest import MakeTask
from tests.notify.conftest import notify_settings
from tests.notify.receivers import Webhook
from tests.notify.test_events import FAILS, messages, run_once
from tests.ports import free_port

pytestmark = pytest.mark.anyio


async def wait_attempts(service: Tasse, count: int, timeout: float = 10) -> Notice:
    """The one notification, once it has been tried `count` times."""
    deadline = time.monotonic() + timeout
    while True:
        [notice] = await service.notifications(None, None, None, 10)
        if notice.attempts >= count:
            return notice
        assert time.monotonic() < deadline, f"tried {notice.attempts} times only"
        await asyncio.sleep(0.05)


async def test_a_receiver_down_gets_the_message_once_it_is_back_after_a_restart(
    data_dir: Path, make_task: MakeTask
) -> None:
    down = Webhook(port=free_port())  # not listening yet
    make_task("backup", None, FAILS)
    first = Tasse(notify_settings(data_dir, down.target))
    await first.start()
    try:
        run_id = await run_once(first, "backup")
        tried = await wait_attempts(first, 2)
        problems = first.notifier.problems()
    finally:
        await first.stop()
    assert tried.status is NoticeStatus.pending
    assert "cannot be reached" in (tried.error or "")
    assert problems
    assert problems[0][0].startswith("webhook+http://127.0.0.1")

    down.start()
    try:
        second = Tasse(notify_settings(data_dir, down.target))
        await second.start()
        try:
            [message] = await messages(down)
            await asyncio.sleep(0.5)
            [notice] = await second.notifications(None, None, None, 10)
        finally:
            await second.stop()
    finally:
        down.stop()
    assert message["run"]["id"] == run_id
    assert len(down.received) == 1
    assert notice.status is NoticeStatus.sent
    assert notice.attempts >= 3


def _failed_run() -> Run:
    now = datetime.now(UTC)
    return Run(
        id="20260101-000000-000000-abcdef",
        task="backup",
        trigger=RunTrigger.schedule,
        status=RunStatus.failed,
        scheduled_at=now,
        started_at=now,
        finished_at=now,
        exit_code=3,
    )


def _notice(target: str, **changes: object) -> Notice:
    notice = Notice(
        id=f"20260101-000000-000000-abcdef-{target}",
        task="backup",
        events=("failed",),
        run_id="20260101-000000-000000-abcdef",
        target=target,
        shown_target="webhook+http://127.0.0.1/hook?secret=****",
        created_at=datetime.now(UTC),
        payload={"title": "Tasse: backup failed", "task": "backup", "events": ["failed"]},
    )
    return notice.but(**changes)


@pytest.mark.parametrize("sent_state_journaled", [True, False])
async def test_a_journal_replayed_sends_nothing_twice(
    data_dir: Path, make_task: MakeTask, hook: Webhook, sent_state_journaled: bool
) -> None:
    settings = notify_settings(data_dir, hook.target)
    [target] = Tasse(settings).notifier.targets  # (its store is closed with the process)
    make_task("backup", None, FAILS)
    # The store already has the message as sent; a server killed before it emptied its
    # journal left the run with its pending row in it (and, maybe, the sent state after).
    store = RunStore(settings.store_url)
    sent = _notice(target.key, status=NoticeStatus.sent, attempts=1, sent_at=datetime.now(UTC))
    OutboxTable(store).save([sent])
    store.close()
    journal = Journal(settings.journal_path)
    pending = entry_of(Runs((_failed_run(),), (_notice(target.key),)))
    journal.append(
        [pending, entry_of(Notices((sent,))), pending] if sent_state_journaled else [pending]
    )

    service = Tasse(settings)
    await service.start()
    try:
        await asyncio.sleep(1.0)
        [notice] = await service.notifications("backup", None, None, 10)
    finally:
        await service.stop()
    assert hook.received == []
    assert notice.status is NoticeStatus.sent
