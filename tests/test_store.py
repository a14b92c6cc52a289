"""Run history in real databases: an SQLite file, `memory://`, and PostgreSQL where it runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tasse.models import Run, RunStatus, RunTrigger
from tasse.store import RunStore, metadata

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 3, 29, 0, 30, 0, 123456, tzinfo=UTC)  # an hour before Berlin's DST change


def require_postgres(url: str = POSTGRES_URL) -> None:
    """Skip when PostgreSQL (or its driver) is not there, or fail if TASSE_REQUIRE_SERVICES=1."""
    required = os.environ.get("TASSE_REQUIRE_SERVICES") == "1"
    missing = pytest.fail if required else pytest.skip
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("psycopg is not installed (pip install 'tasse[postgres]')")
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        missing(f"PostgreSQL is not reachable at {url}: {error.orig}")
    finally:
        engine.dispose()


def drop_tables(url: str) -> None:
    """Start and end a PostgreSQL test without tables left by another run."""
    engine = create_engine(url)
    try:
        metadata.drop_all(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "memory", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    """A RunStore on each backend, closed afterwards."""
    if request.param == "postgresql":
        require_postgres()
        drop_tables(POSTGRES_URL)
        address = POSTGRES_URL
    elif request.param == "sqlite":
        address = f"sqlite:///{tmp_path / 'tasse.db'}"
    else:
        address = "memory://"
    store = RunStore(address)
    try:
        yield store
    finally:
        store.close()
        if request.param == "postgresql":
            drop_tables(POSTGRES_URL)


def make_run(
    task: str = "report",
    minutes: int = 0,
    status: RunStatus = RunStatus.succeeded,
    **fields: object,
) -> Run:
    """A run created `minutes` after T0; its id sorts by that time, like real run ids."""
    at = T0 + timedelta(minutes=minutes)
    values: dict[str, object] = {
        "id": f"{at:%Y%m%d-%H%M%S-%f}-{task[:6]:0>6}",
        "task": task,
        "trigger": RunTrigger.schedule,
        "status": status,
        "scheduled_at": at,
        "started_at": at,
    }
    return Run.model_validate({**values, **fields})


def test_a_run_reads_back_as_it_was_written(store: RunStore) -> None:
    run = make_run(
        status=RunStatus.running,
        scheduled_at=datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=BERLIN),
    )
    store.add(run)
    stored = store.get(run.id)
    assert stored == run
    assert stored is not None
    assert stored.scheduled_at is not None
    assert stored.scheduled_at.utcoffset() == timedelta(0)
    assert stored.scheduled_at == T0


def test_an_update_records_the_outcome(store: RunStore) -> None:
    run = make_run(status=RunStatus.running)
    store.add(run)
    run.status, run.exit_code, run.error = RunStatus.failed, 3, "exited with code 3"
    run.finished_at = T0 + timedelta(seconds=2.5)
    store.update(run)
    assert store.get(run.id) == run


def test_an_unknown_run_is_none(store: RunStore) -> None:
    assert store.get("20260101-000000-000000-abcdef") is None


def test_history_is_newest_first_with_limit_and_status(store: RunStore) -> None:
    statuses = [RunStatus.succeeded, RunStatus.failed, RunStatus.succeeded, RunStatus.skipped]
    runs = [make_run(minutes=i, status=status) for i, status in enumerate(statuses)]
    for run in [runs[2], runs[0], runs[3], runs[1]]:
        store.add(run)
    store.add(make_run(task="other", minutes=10))

    assert store.for_task("report") == runs[::-1]
    assert store.for_task("report", limit=2) == [runs[3], runs[2]]
    assert store.for_task("report", status="succeeded") == [runs[2], runs[0]]
    assert store.for_task("nobody") == []


def test_latest_by_task_gives_each_tasks_newest_run(store: RunStore) -> None:
    for run in [make_run("a", 1), make_run("a", 3), make_run("b", 2), make_run("a", 0)]:
        store.add(run)
    latest = store.latest_by_task()
    assert {name: run.id for name, run in latest.items()} == {
        "a": make_run("a", 3).id,
        "b": make_run("b", 2).id,
    }


def test_unfinished_runs_become_interrupted(store: RunStore) -> None:
    running = make_run(minutes=0, status=RunStatus.running)
    queued = make_run(minutes=1, status=RunStatus.queued)
    done = make_run(minutes=2, status=RunStatus.succeeded, finished_at=T0)
    for run in (running, queued, done):
        store.add(run)
    now = T0 + timedelta(hours=1)

    assert store.interrupt_unfinished(now) == 2
    for run in (running, queued):
        stored = store.get(run.id)
        assert stored is not None
        assert stored.status is RunStatus.interrupted
        assert stored.finished_at == now
        assert stored.error
    assert store.get(done.id) == done
    assert store.interrupt_unfinished(now) == 0


def test_sqlite_history_survives_reopening(tmp_path: Path) -> None:
    address = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'tasse.db'}"  # folders are created
    run = make_run()
    first = RunStore(address)
    try:
        first.add(run)
    finally:
        first.close()
    second = RunStore(address)
    try:
        assert second.get(run.id) == run
    finally:
        second.close()


def test_memory_store_keeps_nothing_between_instances() -> None:
    run = make_run()
    first = RunStore("memory://")
    try:
        first.add(run)
        assert first.get(run.id) == run
    finally:
        first.close()
    second = RunStore("memory://")
    try:
        assert second.get(run.id) is None
    finally:
        second.close()
