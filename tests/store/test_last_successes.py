"""RunStore.last_successes: each task's newest success, what /metrics loads at start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tasse.models import Run, RunStatus, RunTrigger, new_run_id
from tasse.store.runs import RunStore

NOW = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)


def ended(task: str, status: RunStatus, minutes_ago: int) -> Run:
    at = NOW - timedelta(minutes=minutes_ago)
    return Run(
        id=new_run_id(at), task=task, trigger=RunTrigger.schedule, status=status, finished_at=at
    )


def test_the_newest_success_of_each_task_and_none_for_a_task_that_never_succeeded(
    tmp_path: Path,
) -> None:
    store = RunStore(f"sqlite:///{tmp_path / 'tasse.db'}")
    try:
        store.add(
            ended("nightly", RunStatus.succeeded, 90),
            ended("nightly", RunStatus.succeeded, 30),
            ended("nightly", RunStatus.failed, 10),  # newer, but not a success
            ended("flaky", RunStatus.timed_out, 5),
            ended("hourly", RunStatus.succeeded, 60),
        )
        assert store.last_successes() == {
            "nightly": NOW - timedelta(minutes=30),
            "hourly": NOW - timedelta(minutes=60),
        }
    finally:
        store.close()
