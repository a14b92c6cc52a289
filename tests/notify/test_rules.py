"""Rules that read the past: durations against a real history, the dead-man switch with the
server's clock moved by its test-only setting, tags, mail through Apprise, the rate limit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tasse.service import Tasse
from tests.conftest import MakeTask
from tests.notify.conftest import notify_settings
from tests.notify.receivers import SECRET, Mailbox, Webhook
from tests.notify.test_events import FAILS, messages, run_once
from tests.runs.test_runner import add_task

pytestmark = pytest.mark.anyio

#: sleeps as long as the file `seconds` says
SLEEPS = "import pathlib, time; time.sleep(float(pathlib.Path('seconds').read_text()))"


async def test_a_run_much_longer_than_its_median_is_told(
    notified: Tasse, make_task: MakeTask, hook: Webhook
) -> None:
    folder = make_task("report", "notify: {when: [], longer_than: 3x}\n", SLEEPS, seconds="0.1")
    await add_task(notified, make_task, "report", None, None)
    for _ in range(4):  # the history: four runs of about 0.1 s (and Python's start)
        await run_once(notified, "report")
    (folder / "seconds").write_text("2.5")
    slow = await run_once(notified, "report")

    [message] = await messages(hook)
    assert message["events"] == ["longer_than"]
    assert message["run"]["id"] == slow
    assert message["title"] == "Tasse: report ran longer than it should"
    [said] = message["details"]
    assert "longer than 3x the median" in said
    assert "of the last 4 successes" in said


async def test_the_dead_man_switch_fires_when_nothing_succeeded_for_too_long(
    data_dir: Path, make_task: MakeTask, hook: Webhook
) -> None:
    make_task("heartbeat", "notify: {when: [], no_success_for: 26h}\n")
    first = Tasse(notify_settings(data_dir, hook.target))
    await first.start()
    try:
        await run_once(first, "heartbeat")  # a success, now
        first.notifier.check_silences()
    finally:
        await first.stop()
    assert hook.received == []

    # 27 hours later, as the switch sees it: the last success is read from the store.
    later = Tasse(notify_settings(data_dir, hook.target, clock_shift=27 * 3600))
    await later.start()
    try:
        [message] = await messages(hook)
        await asyncio.sleep(0.5)  # checked every 0.1 s: told once per silence
    finally:
        await later.stop()
    assert message["events"] == ["no_success_for"]
    assert message["title"] == "Tasse: heartbeat has not succeeded for too long"
    assert message["reason"].startswith("no success for 27.0 h (allowed: 26 h)")
    assert len(hook.received) == 1


async def test_a_task_picks_tagged_targets_and_untagged_ones_hear_the_rest(
    data_dir: Path, make_task: MakeTask, hook: Webhook
) -> None:
    pager = Webhook().start()
    make_task("db", "notify: {tags: [pager]}\n", FAILS)
    make_task("cleanup", None, FAILS)
    service = Tasse(notify_settings(data_dir, hook.target, f"pager,oncall={pager.target}"))
    await service.start()
    try:
        await run_once(service, "db")
        await run_once(service, "cleanup")
        [paged] = await asyncio.to_thread(pager.wait_for)
        [general] = await messages(hook)
        await asyncio.sleep(0.3)
    finally:
        await service.stop()
        pager.stop()
    assert paged["task"] == "db"
    assert general["task"] == "cleanup"
    assert len(pager.received) == len(hook.received) == 1


async def test_a_failure_arrives_as_mail_through_apprise(
    data_dir: Path, make_task: MakeTask, mailbox: Mailbox
) -> None:
    make_task("backup", None, FAILS)
    service = Tasse(notify_settings(data_dir, mailbox.target))
    await service.start()
    try:
        run_id = await run_once(service, "backup")
        [mail] = await asyncio.to_thread(mailbox.wait_for)
    finally:
        await service.stop()
    assert mail["Subject"] == "Tasse: backup failed"
    assert mail["To"] == "ops@example.org"
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Task: backup" in text
    assert "Event: failed" in text
    assert f"Run: {run_id} (failed; manual, attempt 1)" in text
    assert "Reason: exited with code 3: boom: no route" in text
    assert f"Dashboard: https://tasse.example.org/runs/{run_id}" in text
    assert "boom: no route" in text


async def test_a_flapping_task_sends_one_message_then_a_digest(
    data_dir: Path, make_task: MakeTask, hook: Webhook
) -> None:
    make_task("flap", None, FAILS)
    service = Tasse(notify_settings(data_dir, hook.target, notify_rate_window=1.5))
    await service.start()
    try:
        for _ in range(4):
            await run_once(service, "flap")
        [first] = await messages(hook)
        [digest] = await messages(hook, events=["digest"])
        # A delivery's `sent` is recorded just after the receiver has it: wait for it.
        for _ in range(100):
            notices = await service.notifications("flap", None, None, 10)
            if all(notice.status.value != "pending" for notice in notices):
                break
            await asyncio.sleep(0.05)
    finally:
        await service.stop()
    assert first["events"] == ["failed"]
    assert digest["title"] == "Tasse: flap: more notifications"
    assert digest["reason"] == "3 notification(s) held back by the rate limit"
    assert len(digest["details"]) == 3
    assert len(hook.received) == 2
    statuses = sorted(notice.status.value for notice in notices)
    assert statuses == ["digested", "digested", "digested", "sent", "sent"]


def test_secrets_in_targets_are_masked_wherever_shown(data_dir: Path) -> None:
    mail = "mailto://ops:hunter2@127.0.0.1:2525?from=a@example.org&to=b@example.org"
    hook = f"webhook+https://hooks.example.org/x?secret={SECRET}"
    service = Tasse(notify_settings(data_dir, mail, hook))
    try:
        shown = [service.notifier.shown_of(target) for target in service.notifier.targets]
    finally:
        service.store.close()
    assert all("hunter2" not in s and SECRET not in s for s in shown), shown
    assert shown[1] == "webhook+https://hooks.example.org/x?secret=****"
