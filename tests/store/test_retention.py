"""Retention: a real SQLite store and real run log files, and a real server pruning both."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tasse.cli import main as cli
from tasse.models import Run, RunStatus, RunTrigger, new_run_id
from tasse.settings import Settings
from tasse.store.log_files import LogLayout
from tasse.store.retention import PruneReport, Retention
from tasse.store.runs import RunStore
from tests.conftest import StartServer
from tests.http.test_api import wait_until

NOW = datetime.now(UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    """A real SQLite store in the test's folder."""
    store = RunStore(f"sqlite:///{tmp_path / 'tasse.db'}")
    try:
        yield store
    finally:
        store.close()


class History:
    """Runs recorded in a real store, each with its run log written (and dated) on disk."""

    def __init__(self, store: RunStore, tmp_path: Path):
        self.store = store
        self.logs_dir = tmp_path / "data" / "logs"
        self.layout = LogLayout(self.logs_dir)
        self.live: set[str] = set()

    def retention(
        self, keep_runs: int = 0, keep_runs_days: float = 0, known: tuple[str, ...] = ()
    ) -> Retention:
        settings = Settings(
            data_dir=self.logs_dir.parent,
            keep_runs=keep_runs,
            keep_runs_days=keep_runs_days,
            retention_interval=0.05,
            _env_file=None,
        )
        return Retention(settings, self.store, self.layout, self.live.__contains__, lambda: known)

    def run(
        self, task: str, days_ago: float, status: RunStatus = RunStatus.succeeded, row: bool = True
    ) -> Run:
        """A run made `days_ago`, recorded (unless not `row`) with a log last written then."""
        at = NOW - timedelta(days=days_ago)
        run = Run(
            id=new_run_id(at),
            task=task,
            trigger=RunTrigger.schedule,
            status=status,
            started_at=at,
            finished_at=None if status in (RunStatus.queued, RunStatus.running) else at,
        )
        if row:
            self.store.add(run)
        log = self.log(run)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"output of {run.id}\n")
        os.utime(log, (at.timestamp(), at.timestamp()))
        return run

    def log(self, run: Run) -> Path:
        return self.layout.run_log(run.task, run.id)

    def kept(self, task: str) -> list[str]:
        """The task's runs still in the history, oldest first."""
        return [run.id for run in reversed(self.store.for_task(task))]

    def logs(self, task: str) -> list[str]:
        """The run ids of the task's run logs still on disk, oldest first."""
        return sorted(path.stem for path in (self.logs_dir / task / "runs").glob("*.log"))


@pytest.fixture
def history(store: RunStore, tmp_path: Path) -> History:
    return History(store, tmp_path)


def ids(runs: list[Run]) -> list[str]:
    return [run.id for run in runs]


def test_the_count_limit_keeps_each_tasks_newest_runs_and_their_logs(history: History) -> None:
    runs = [history.run("report", days_ago=5 - i) for i in range(5)]
    others = [history.run("other", days_ago=1), history.run("other", days_ago=0)]
    pruned_size = sum(history.log(run).stat().st_size for run in runs[:2])

    report = history.retention(keep_runs=3).prune({"report", "other"}, NOW)

    assert report == PruneReport(runs_deleted=2, files_deleted=2, bytes_freed=pruned_size)
    assert history.kept("report") == history.logs("report") == ids(runs[2:])
    assert history.kept("other") == history.logs("other") == ids(others)


def test_the_age_limit_removes_runs_made_before_it(history: History) -> None:
    runs = [history.run("report", days_ago=days) for days in (40, 31, 29, 1)]

    report = history.retention(keep_runs_days=30).prune({"report"}, NOW)

    assert report.runs_deleted == report.files_deleted == 2
    assert history.kept("report") == history.logs("report") == ids(runs[2:])


def test_an_existing_tasks_newest_run_outlives_the_age_limit(history: History) -> None:
    # A monthly task: its last run is older than 30 days just before its next one.
    runs = [history.run("monthly", days_ago=days) for days in (62, 31)]

    history.retention(keep_runs_days=30).prune({"monthly"}, NOW)

    assert history.kept("monthly") == history.logs("monthly") == [runs[1].id]


def test_runs_of_a_task_that_no_longer_exists_are_pruned_too(history: History) -> None:
    gone = [history.run("gone", days_ago=days) for days in (40, 31, 3, 2, 1)]
    retention = history.retention(keep_runs=2, keep_runs_days=30)

    retention.prune({"report"}, NOW)
    assert history.kept("gone") == history.logs("gone") == ids(gone[3:])

    retention.prune({"report"}, NOW + timedelta(days=30))
    assert history.kept("gone") == history.logs("gone") == []


def test_unfinished_runs_and_their_logs_are_never_removed(history: History) -> None:
    running = history.run("report", days_ago=40, status=RunStatus.running)
    queued = history.run("report", days_ago=39, status=RunStatus.queued)
    done = [history.run("report", days_ago=days) for days in (38, 37)]

    report = history.retention(keep_runs=1, keep_runs_days=30).prune(set(), NOW)

    assert report.runs_deleted == len(done)
    assert history.kept("report") == history.logs("report") == [running.id, queued.id]


def test_a_live_runs_log_is_never_deleted(history: History) -> None:
    # Its row says it ended while its log is still open: the moment before the run closes it.
    ending = history.run("report", days_ago=40)
    history.live.add(ending.id)
    retention = history.retention(keep_runs_days=30)

    report = retention.prune(set(), NOW)
    assert (report.runs_deleted, report.files_deleted) == (1, 0)
    assert history.logs("report") == [ending.id]

    history.live.clear()  # once it is closed, it is an old log without a run: removed
    assert retention.prune(set(), NOW).files_deleted == 1
    assert history.logs("report") == []


def test_orphaned_run_logs_are_removed_only_when_old(history: History) -> None:
    old = history.run("report", days_ago=40, row=False)
    recent = history.run("report", days_ago=2, row=False)
    written_lately = history.run("report", days_ago=40, row=False)
    os.utime(history.log(written_lately))  # a quiet run that wrote once more
    spared = history.run("report", days_ago=35)  # the newest run of an existing task
    other_files = [
        history.logs_dir / "report" / "log.txt",
        history.logs_dir / "report" / "runs" / "notes.txt",
    ]
    for path in other_files:
        path.write_text("kept\n")
        os.utime(path, (0, 0))

    report = history.retention(keep_runs_days=30).prune({"report"}, NOW)

    assert (report.runs_deleted, report.files_deleted) == (0, 1)
    assert history.logs("report") == sorted([written_lately.id, spared.id, recent.id])
    assert old.id not in history.logs("report")
    assert all(path.exists() for path in other_files)


def test_a_pass_logs_one_line_when_it_deleted_something(
    history: History, caplog: pytest.LogCaptureFixture
) -> None:
    oldest = history.run("report", days_ago=2)
    history.run("report", days_ago=1)
    size = history.log(oldest).stat().st_size
    retention = history.retention(keep_runs=1)
    caplog.set_level(logging.INFO, logger="tasse.store.retention")

    retention.prune({"report"}, NOW)
    retention.prune({"report"}, NOW)

    assert [record.getMessage() for record in caplog.records] == [
        f"retention: 1 run(s) removed from the history, 1 run log(s) ({size} bytes) deleted"
    ]


@pytest.mark.anyio
async def test_a_failed_pass_is_logged_and_the_next_one_prunes(
    history: History, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [history.run("report", days_ago=days) for days in (3, 2, 1)]
    real = history.store.tasks_with_runs
    calls: list[int] = []

    def fails_first() -> list[str]:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("the database is down")
        return real()

    monkeypatch.setattr(history.store, "tasks_with_runs", fails_first)
    retention = history.retention(keep_runs=1)
    retention.start()
    try:
        for _ in range(100):
            await asyncio.sleep(0.02)
            if len(history.kept("report")) == 1:
                break
    finally:
        await retention.stop()

    assert history.kept("report") == history.logs("report") == [runs[2].id]
    assert "retention pass failed" in caplog.text
    assert "the database is down" in caplog.text
    passes = len(calls)
    await asyncio.sleep(0.15)
    assert len(calls) == passes  # stopped: no pass after stop()


def test_a_server_keeps_the_newest_runs_of_a_task(start_server: StartServer) -> None:
    server = start_server("--keep-runs", "3", TASSE_RETENTION_INTERVAL="0.2")
    server.task("hello", None)
    wait_until(lambda: server.http.get("/tasks/hello").status_code == 200)
    started = []
    for _ in range(5):
        run = server.http.post("/tasks/hello/run").json()
        assert server.finished(run["id"])["status"] == "succeeded"
        started.append(run["id"])

    def history() -> list[str]:
        return [run["id"] for run in server.http.get("/tasks/hello/runs").json()]

    newest = sorted(started)[-3:]
    wait_until(lambda: sorted(history()) == newest, timeout=5)
    logs = server.data_dir / "logs" / "hello" / "runs"
    wait_until(lambda: sorted(path.stem for path in logs.glob("*.log")) == newest, timeout=5)


def test_the_serve_flags_set_the_limits_and_zero_means_no_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout's
    monkeypatch.setenv("TASSE_KEEP_RUNS", "5")
    chosen: list[Settings] = []
    monkeypatch.setattr(cli, "_serve", lambda settings, _: chosen.append(settings) or 0)

    assert cli.main(["serve", "--keep-runs", "0", "--keep-runs-days", "0.5"]) == 0
    assert (chosen[0].keep_runs, chosen[0].keep_runs_days) == (0, 0.5)
    assert cli.main(["serve"]) == 0
    assert (chosen[1].keep_runs, chosen[1].keep_runs_days) == (5, 30.0)
