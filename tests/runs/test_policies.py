"""Per-task policies: overlap, grace, catch-up, retries, kill grace, jitter — decided and lived."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tasse.errors import TaskBusyError, TaskConfigError
from tasse.models import Run, RunRequest, RunStatus, RunTrigger
from tasse.runs.ledger import ONE_BY_ONE, not_run_records
from tasse.runs.places import Places
from tasse.runs.policies import CATCHUP_AT_MOST, Policy, decide_fires, policy_of, retry_delay
from tasse.schedule.triggers import fingerprint, upcoming
from tasse.service import Tasse
from tasse.settings import Settings
from tasse.tasks import discovery
from tasse.tasks.task import TaskSpec
from tasse.tasks.triggers import build_triggers
from tests.conftest import MakeTask, history
from tests.runs.test_dispatcher import wait_runs
from tests.runs.test_runner import add_task, wait_final

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
#: runs for a while, then succeeds
SLOW = "import time; time.sleep(0.6)"
#: prints its attempt, and fails until the third
FLAKY = """
import os, sys
attempt = int(os.environ["TASSE_ATTEMPT"])
print("attempt", attempt, os.environ["TASSE_TRIGGER"])
sys.exit(0 if attempt >= 3 else 1)
"""


def seconds_ago(count: float) -> datetime:
    return NOW - timedelta(seconds=count)


# -- decisions (pure) ----------------------------------------------------------------------


def test_a_fire_on_time_runs() -> None:
    decision = decide_fires([seconds_ago(1)], NOW, seconds_ago(3600), Policy())
    assert decision.run == [seconds_ago(1)]
    assert decision.not_run == []


def test_a_fire_later_than_the_tasks_grace_time_is_missed() -> None:
    policy = Policy(misfire_grace_time=5)
    decision = decide_fires([seconds_ago(6)], NOW, seconds_ago(3600), policy)
    assert decision.run == []
    [(when, status, reason)] = decision.not_run
    assert (when, status) == (seconds_ago(6), RunStatus.missed)
    assert "6 s late" in reason
    assert "grace time of 5 s" in reason


def test_fires_due_together_while_up_are_coalesced_into_the_latest() -> None:
    due = [seconds_ago(3), seconds_ago(2), seconds_ago(1)]
    decision = decide_fires(due, NOW, seconds_ago(3600), Policy())
    assert decision.run == [seconds_ago(1)]
    assert [(t, s) for t, s, _ in decision.not_run] == [
        (seconds_ago(3), RunStatus.coalesced),
        (seconds_ago(2), RunStatus.coalesced),
    ]


def test_the_catch_ups_of_a_clock_change_each_run() -> None:
    # `0,30 2 * * *` in Berlin on spring-forward night: 02:00 and 02:30 never came, so both
    # fire right after the jump, a microsecond apart (schedule/wallclock.py), and come due
    # together; Debian's cron runs each of them, and so does Tasse (one after another).
    jump = seconds_ago(1)
    catch_ups = [jump, jump + timedelta(microseconds=1)]
    earlier = seconds_ago(30)  # the server was busy: this one is coalesced as before
    decision = decide_fires([earlier, *catch_ups], NOW, seconds_ago(3600), Policy())
    assert decision.run == catch_ups
    assert [(t, s) for t, s, _ in decision.not_run] == [(earlier, RunStatus.coalesced)]


def test_a_burst_of_catch_ups_runs_at_most_the_latest_hundred() -> None:
    burst = [seconds_ago(1) + timedelta(microseconds=n) for n in range(CATCHUP_AT_MOST + 5)]
    decision = decide_fires(burst, NOW, seconds_ago(3600), Policy())
    assert decision.run == burst[5:]
    assert [(t, s) for t, s, _ in decision.not_run] == [(t, RunStatus.coalesced) for t in burst[:5]]


@pytest.mark.parametrize(
    ("catchup", "ran"),
    [
        ("none", []),
        ("latest", [seconds_ago(100)]),
        ("all", [seconds_ago(300), seconds_ago(200), seconds_ago(100)]),
    ],
)
def test_fires_due_while_down_follow_the_catchup_policy(catchup: Any, ran: list[datetime]) -> None:
    due = [seconds_ago(300), seconds_ago(200), seconds_ago(100)]
    decision = decide_fires(due, NOW, seconds_ago(10), Policy(catchup=catchup))
    assert decision.run == ran
    missed = [t for t, status, reason in decision.not_run if status is RunStatus.missed]
    assert sorted(missed + ran) == due
    assert all("the server was down" in reason for _, _, reason in decision.not_run)


def test_after_downtime_latest_runs_the_fire_due_now_and_misses_the_rest() -> None:
    due = [seconds_ago(300), seconds_ago(200), seconds_ago(1)]
    decision = decide_fires(due, NOW, seconds_ago(10), Policy(catchup="latest"))
    assert decision.run == [seconds_ago(1)]
    assert [status for _, status, _ in decision.not_run] == [RunStatus.missed] * 2


def test_catchup_all_is_capped() -> None:
    due = [seconds_ago(10_000 - i) for i in range(CATCHUP_AT_MOST + 5)]
    decision = decide_fires(due, NOW, seconds_ago(1), Policy(catchup="all"))
    assert decision.run == due[5:]
    assert [t for t, _, _ in decision.not_run] == due[:5]


def test_more_not_run_fires_than_one_by_one_are_summed_up() -> None:
    outcomes = [(seconds_ago(1000 - i), RunStatus.missed, "down") for i in range(ONE_BY_ONE + 50)]
    records = not_run_records("t", outcomes)
    assert len(records) == ONE_BY_ONE + 1
    assert records[0].error is not None
    assert records[0].error.startswith("50 fire times from")
    assert [r.scheduled_at for r in records[1:]] == [t for t, _, _ in outcomes[50:]]


def test_retry_delay_doubles_up_to_the_cap() -> None:
    policy = Policy(retries=10, retry_delay=10, retry_max_delay=60)
    assert [retry_delay(policy, n) for n in range(1, 6)] == [10, 20, 40, 60, 60]
    assert retry_delay(policy, 10_000) == 60  # no overflow
    assert retry_delay(Policy(retry_delay=0), 3) == 0


def test_a_task_without_policies_gets_the_servers_defaults() -> None:
    settings = Settings(kill_grace=7, misfire_grace_time=30, _env_file=None)  # type: ignore[call-arg]
    assert policy_of(TaskSpec(), settings) == Policy(
        overlap="skip", max_parallel=1, misfire_grace_time=30, kill_grace=7
    )
    assert policy_of(TaskSpec(overlap="parallel"), settings).max_parallel is None
    own = TaskSpec(overlap="queue", max_parallel=3, kill_grace=0, misfire_grace_time=5)
    assert policy_of(own, settings) == Policy(
        overlap="queue", max_parallel=3, misfire_grace_time=5, kill_grace=0
    )


def test_places_admit_in_line_order_and_a_retry_goes_first() -> None:
    places: Places[str] = Places()
    assert places.enter("t", "a", 1)
    assert not places.enter("t", "b", 1)
    assert not places.enter("t", "retry", 1, first=True)
    assert places.waiting("t") == ["retry", "b"]
    assert not places.has_room("t", 5)  # somebody waits: nobody jumps the line
    assert places.leave("t", "a") == ["retry"]
    assert places.leave("t", "b") == []  # left the line before its turn
    assert places.leave("t", "retry") == []
    assert places.holders("t") == []
    assert places.has_room("t", 1)


@pytest.mark.parametrize(
    ("yaml", "key"),
    [
        ("overlap: sometimes", "overlap"),
        ("max_parallel: 0", "max_parallel"),
        ("catchup: everything", "catchup"),
        ("retries: -1", "retries"),
        ("retry_delay: .inf", "retry_delay"),
        ("kill_grace: -2", "kill_grace"),
        ("misfire_grace_time: 0", "misfire_grace_time"),
        ("jitter: 100000", "jitter"),
    ],
)
async def test_a_bad_policy_value_is_an_error_naming_its_key(
    tasse: Tasse, make_task: MakeTask, yaml: str, key: str
) -> None:
    make_task("odd", yaml)
    await tasse.rescan()
    error = tasse.registry.entries["odd"].error
    assert isinstance(error, TaskConfigError)
    assert error.task == "odd"
    assert key in str(error)
    assert "task.yaml" in str(error)


# -- jitter -----------------------------------------------------------------------------------


async def test_task_jitter_applies_to_every_schedule_without_its_own(
    tasse: Tasse, make_task: MakeTask
) -> None:
    task = await add_task(
        tasse,
        make_task,
        "jittery",
        """
        jitter: 20
        schedules:
          - "*/5 * * * *"
          - {trigger: interval, minutes: 5}
          - {trigger: cron, minute: "*/5"}
          - {trigger: interval, minutes: 5, jitter: 1}
        """,
    )
    triggers = build_triggers(task, "UTC")
    assert [getattr(t, "jitter", None) for t in triggers] == [20, 20, 20, 1]
    start = datetime(2026, 11, 22, 12, 0, 30, tzinfo=UTC)
    fires = upcoming(triggers[:1], 50, start)
    assert len(fires) == 50
    offsets = [
        (f - f.replace(minute=f.minute - f.minute % 5, second=0, microsecond=0)) for f in fires
    ]
    assert all(timedelta(0) <= o <= timedelta(seconds=20) for o in offsets)
    assert len({o.total_seconds() for o in offsets}) > 10  # really random


# -- overlap, with real runs ------------------------------------------------------------------


async def fire_now(tasse: Tasse, name: str) -> None:
    task = tasse.registry.entries[name].task
    assert task is not None
    tasse.dispatcher.fire(task, [datetime.now(UTC)])


async def settled(tasse: Tasse, name: str, count: int) -> list[Run]:
    """Wait until the task has `count` runs, all final; oldest first."""
    deadline = time.monotonic() + 15
    while True:
        runs = await history(tasse, name)
        if len(runs) >= count and all(run.status.is_final for run in runs):
            return runs[::-1]
        assert time.monotonic() < deadline, runs
        await asyncio.sleep(0.05)


async def test_queue_runs_a_fire_after_the_running_one_and_coalesces_more(
    tasse: Tasse, make_task: MakeTask
) -> None:
    await add_task(tasse, make_task, "queued", "overlap: queue", script=SLOW)
    for _ in range(3):
        await fire_now(tasse, "queued")
    runs = await settled(tasse, "queued", 3)
    [merged] = [run for run in runs if run.status is RunStatus.coalesced]
    first, second = [run for run in runs if run is not merged]
    assert (first.status, second.status) == (RunStatus.succeeded, RunStatus.succeeded)
    assert merged.error == f"run {second.id} was already waiting"
    assert first.finished_at
    assert second.started_at
    assert second.started_at >= first.finished_at


async def test_queue_runs_every_manual_request_in_turn(tasse: Tasse, make_task: MakeTask) -> None:
    await add_task(tasse, make_task, "turns", "overlap: queue", script=SLOW)
    runs = [tasse.run_now("turns", RunRequest()) for _ in range(3)]
    # (the first may wait for the shared bare environment to be built: queued too)
    assert [run.status for run in runs[1:]] == [RunStatus.queued] * 2
    listed = {r.id: r.status for r in (await history(tasse, "turns"))}
    assert listed[runs[1].id] == listed[runs[2].id] == RunStatus.queued
    finished = [await wait_final(tasse, run.id, timeout=15) for run in runs]
    assert all(run.status is RunStatus.succeeded for run in finished)
    for earlier, later in itertools.pairwise(finished):
        assert earlier.finished_at
        assert later.started_at
        assert later.started_at >= earlier.finished_at


async def test_parallel_runs_alongside_up_to_max_parallel(
    tasse: Tasse, make_task: MakeTask
) -> None:
    await add_task(tasse, make_task, "wide", "overlap: parallel\nmax_parallel: 2", script=SLOW)
    for _ in range(3):
        await fire_now(tasse, "wide")
    runs = await settled(tasse, "wide", 3)
    statuses = sorted(run.status.value for run in runs)
    assert statuses == ["skipped", "succeeded", "succeeded"]
    ran = [run for run in runs if run.status is RunStatus.succeeded]
    assert ran[1].started_at
    assert ran[0].finished_at
    assert ran[1].started_at < ran[0].finished_at


async def test_replace_stops_the_running_one_for_the_new_fire(
    tasse: Tasse, make_task: MakeTask
) -> None:
    long = "import time; print('up', flush=True); time.sleep(30)"
    await add_task(tasse, make_task, "fresh", "overlap: replace", script=long)
    old = tasse.run_now("fresh", RunRequest())
    await asyncio.sleep(0.3)
    new = tasse.run_now("fresh", RunRequest())
    assert new.status is RunStatus.queued
    old = await wait_final(tasse, old.id)
    assert old.status is RunStatus.cancelled
    assert old.error == f"replaced by run {new.id}"
    await asyncio.sleep(0.3)
    assert (await tasse.get_run(new.id)).status is RunStatus.running
    await tasse.cancel_run(new.id)


# -- retries ---------------------------------------------------------------------------------


async def test_a_failed_run_is_retried_with_attempt_numbers_until_it_succeeds(
    tasse: Tasse, make_task: MakeTask
) -> None:
    await add_task(tasse, make_task, "flaky", "retries: 5\nretry_delay: 0.2", script=FLAKY)
    first = tasse.run_now("flaky", RunRequest())
    runs = await settled(tasse, "flaky", 3)
    assert [(r.attempt, r.trigger, r.status) for r in runs] == [
        (1, RunTrigger.manual, RunStatus.failed),
        (2, RunTrigger.retry, RunStatus.failed),
        (3, RunTrigger.retry, RunStatus.succeeded),
    ]
    assert runs[0].id == first.id
    assert (await tasse.read_log(runs[2].id)) == b"attempt 3 retry\n"
    # backoff: 0.2 s, then 0.4 s
    gaps = [
        (later.started_at - earlier.finished_at).total_seconds()
        for earlier, later in itertools.pairwise(runs)
        if later.started_at and earlier.finished_at
    ]
    assert gaps[0] >= 0.2
    assert gaps[1] >= 0.4
    await asyncio.sleep(0.5)
    assert len(await history(tasse, "flaky")) == 3  # no retry after the success


async def test_retries_stop_when_they_are_used_up(tasse: Tasse, make_task: MakeTask) -> None:
    await add_task(
        tasse, make_task, "broken", "retries: 2\nretry_delay: 0", script="raise SystemExit(3)"
    )
    tasse.run_now("broken", RunRequest())
    runs = await settled(tasse, "broken", 3)
    assert [(r.attempt, r.status, r.exit_code) for r in runs] == [
        (n, RunStatus.failed, 3) for n in (1, 2, 3)
    ]
    await asyncio.sleep(0.3)
    assert len(await history(tasse, "broken")) == 3


async def test_a_waiting_retry_is_listed_and_can_be_cancelled(
    tasse: Tasse, make_task: MakeTask
) -> None:
    await add_task(
        tasse, make_task, "later", "retries: 3\nretry_delay: 60", script="raise SystemExit(1)"
    )
    first = tasse.run_now("later", RunRequest())
    await wait_final(tasse, first.id)
    retry = await wait_runs(tasse, "later", 2)
    waiting = retry[0]
    assert (waiting.status, waiting.trigger, waiting.attempt) == (
        RunStatus.queued,
        RunTrigger.retry,
        2,
    )
    assert waiting.scheduled_at
    assert waiting.scheduled_at > datetime.now(UTC) + timedelta(seconds=50)
    with pytest.raises(TaskBusyError):  # the retry holds the task's place
        tasse.run_now("later", RunRequest())
    cancelled = await tasse.cancel_run(waiting.id)
    assert cancelled.status is RunStatus.cancelled
    await asyncio.sleep(0.2)
    assert len(await history(tasse, "later")) == 2


async def test_a_cancelled_run_is_not_retried(tasse: Tasse, make_task: MakeTask) -> None:
    script = "import time; print('up', flush=True); time.sleep(30)"
    await add_task(tasse, make_task, "stopped", "retries: 3\nretry_delay: 0", script=script)
    run = tasse.run_now("stopped", RunRequest())
    await asyncio.sleep(0.3)
    await tasse.cancel_run(run.id)
    await asyncio.sleep(0.3)
    assert [r.status for r in (await history(tasse, "stopped"))] == [RunStatus.cancelled]


async def test_a_timed_out_run_is_retried(tasse: Tasse, make_task: MakeTask) -> None:
    yaml = "timeout: 0.3\nretries: 1\nretry_delay: 0\nkill_grace: 0.1"
    await add_task(tasse, make_task, "slowpoke", yaml, script="import time; time.sleep(30)")
    tasse.run_now("slowpoke", RunRequest())
    runs = await settled(tasse, "slowpoke", 2)
    assert [(r.attempt, r.status) for r in runs] == [
        (1, RunStatus.timed_out),
        (2, RunStatus.timed_out),
    ]


# -- kill grace ------------------------------------------------------------------------------


async def test_the_tasks_kill_grace_decides_when_sigkill_follows(
    tasse: Tasse, make_task: MakeTask, settings: Settings
) -> None:
    stubborn = """
    import signal, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("up", flush=True)
    time.sleep(30)
    """
    await add_task(tasse, make_task, "stubborn", "kill_grace: 3", script=stubborn)
    run = tasse.run_now("stubborn", RunRequest())
    await asyncio.sleep(0.5)
    started = time.monotonic()
    await tasse.cancel_run(run.id)
    took = time.monotonic() - started
    assert settings.kill_grace == 1.0
    assert 2.8 <= took < 6, took  # the task's 3 s, not the server's 1 s
    assert (await tasse.get_run(run.id)).status is RunStatus.cancelled


# -- catch-up, with real runs ----------------------------------------------------------------


async def test_catchup_all_runs_each_missed_fire_in_turn(tasse: Tasse, make_task: MakeTask) -> None:
    task = await add_task(tasse, make_task, "behind", "catchup: all", script=SLOW)
    now = datetime.now(UTC)
    due = [now - timedelta(minutes=m) for m in (30, 20, 10)]
    tasse.dispatcher.started_at = now - timedelta(minutes=1)  # down until a minute ago
    tasse.dispatcher.fire(task, due)
    runs = await settled(tasse, "behind", 3)
    assert [(r.scheduled_at, r.status) for r in runs] == [(t, RunStatus.succeeded) for t in due]
    for earlier, later in itertools.pairwise(runs):
        assert earlier.finished_at
        assert later.started_at
        assert later.started_at >= earlier.finished_at


async def test_catchup_none_records_every_fire_missed_while_down(
    tasse: Tasse, make_task: MakeTask
) -> None:
    task = await add_task(tasse, make_task, "fresh-start", "catchup: none")
    now = datetime.now(UTC)
    tasse.dispatcher.started_at = now - timedelta(minutes=1)
    tasse.dispatcher.fire(task, [now - timedelta(minutes=m) for m in (30, 20, 10)])
    runs = await history(tasse, "fresh-start")
    assert [r.status for r in runs] == [RunStatus.missed] * 3
    assert all("catchup: none" in (r.error or "") for r in runs)


async def test_a_task_shows_the_policies_in_force(tasse: Tasse, make_task: MakeTask) -> None:
    await add_task(tasse, make_task, "shown", "overlap: queue\nretries: 2")
    policy = tasse.get_task("shown").policy
    assert policy["overlap"] == "queue"
    assert policy["retries"] == 2
    assert policy["kill_grace"] == tasse.settings.kill_grace  # the server's default
    assert policy["misfire_grace_time"] == tasse.settings.misfire_grace_time


# -- found in review ---------------------------------------------------------------------------


async def test_a_removed_tasks_waiting_retry_is_cancelled_not_run(
    tasse: Tasse, make_task: MakeTask, data_dir: Any
) -> None:
    yaml = "retries: 2\nretry_delay: 60"
    await add_task(tasse, make_task, "doomed", yaml, script="raise SystemExit(1)")
    await wait_final(tasse, tasse.run_now("doomed", RunRequest()).id)
    waiting = (await wait_runs(tasse, "doomed", 2))[0]
    assert waiting.status is RunStatus.queued
    shutil.rmtree(data_dir / "tasks" / "doomed")
    await tasse.rescan()
    ended = await wait_final(tasse, waiting.id)
    assert ended.status is RunStatus.cancelled
    assert ended.error == "its task was removed before it started"


async def test_replace_lets_the_newest_request_win_over_one_still_waiting(
    tasse: Tasse, make_task: MakeTask
) -> None:
    stubborn = """
    import signal, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("up", flush=True)
    time.sleep(30)
    """
    await add_task(tasse, make_task, "newest", "overlap: replace\nkill_grace: 1", script=stubborn)
    first = tasse.run_now("newest", RunRequest())
    await asyncio.sleep(0.5)
    second = tasse.run_now("newest", RunRequest())
    third = tasse.run_now("newest", RunRequest())
    skipped_over = await wait_final(tasse, second.id)
    assert skipped_over.status is RunStatus.cancelled
    assert skipped_over.error == f"replaced by run {third.id}"
    assert (await wait_final(tasse, first.id)).status is RunStatus.cancelled
    await asyncio.sleep(0.5)
    assert (await tasse.get_run(third.id)).status is RunStatus.running
    await tasse.cancel_run(third.id)


async def test_catchup_all_runs_in_turn_even_when_the_task_may_run_in_parallel(
    tasse: Tasse, make_task: MakeTask
) -> None:
    task = await add_task(
        tasse, make_task, "wide-behind", "catchup: all\noverlap: parallel", script=SLOW
    )
    now = datetime.now(UTC)
    tasse.dispatcher.started_at = now - timedelta(minutes=1)
    tasse.dispatcher.fire(task, [now - timedelta(minutes=m) for m in (30, 20, 10)])
    runs = await settled(tasse, "wide-behind", 3)
    for earlier, later in itertools.pairwise(runs):
        assert earlier.finished_at
        assert later.started_at
        assert later.started_at >= earlier.finished_at


async def test_catchup_latest_catches_up_once_per_task_not_per_schedule(
    tasse: Tasse, make_task: MakeTask
) -> None:
    task = await add_task(tasse, make_task, "two-schedules", "catchup: latest")
    now = datetime.now(UTC)
    tasse.dispatcher.started_at = now - timedelta(minutes=1)
    tasse.dispatcher.fire(task, [now - timedelta(minutes=m) for m in (30, 20)])  # schedule 0
    tasse.dispatcher.fire(task, [now - timedelta(minutes=m) for m in (25, 15)])  # schedule 1
    runs = await settled(tasse, "two-schedules", 4)
    assert sorted(r.status.value for r in runs) == ["missed", "missed", "missed", "succeeded"]
    others = [r for r in runs if r.error and "another schedule" in r.error]
    assert len(others) == 2


def test_an_interval_without_a_start_date_keeps_its_fingerprint_across_restarts(
    make_task: MakeTask,
) -> None:
    folder = make_task("steady", "scheduler: {trigger: interval, seconds: 2}")
    task = discovery.load_task(folder)
    first = fingerprint(build_triggers(task, "UTC")[0])
    time.sleep(0.01)
    assert fingerprint(build_triggers(task, "UTC")[0]) == first
    (folder / "task.yaml").write_text("scheduler: {trigger: interval, seconds: 3}\n")
    assert fingerprint(build_triggers(discovery.load_task(folder), "UTC")[0]) != first
