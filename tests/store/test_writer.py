"""The writer and its journal on a real SQLite store, its failures real too (a locked file)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from tasse.models import Run, RunStatus, RunTrigger, new_run_id
from tasse.store.database import Timeouts
from tasse.store.journal import Journal, JournalFullError
from tasse.store.runs import RunStore
from tasse.store.writer import RecordWriter
from tests.http.test_api import wait_until

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


def make_run(status: RunStatus = RunStatus.running, task: str = "job") -> Run:
    return Run(
        id=new_run_id(datetime.now(UTC)),
        task=task,
        trigger=RunTrigger.schedule,
        status=status,
        scheduled_at=T0,
        started_at=T0,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    opened = RunStore(f"sqlite:///{tmp_path / 'tasse.db'}", timeouts=Timeouts(1, 0.5))
    yield opened
    opened.close()


@pytest.fixture
def writer(store: RunStore, tmp_path: Path) -> Iterator[RecordWriter]:
    made = RecordWriter(store, Journal(tmp_path / "journal" / "records.jsonl"), deadline=2)
    made.start()
    yield made
    made.stop(5)


class Lock:
    """Another connection holds the SQLite file's write lock while inside the `with`."""

    def __init__(self, path: Path):
        self.connection = sqlite3.connect(path, isolation_level=None)

    def __enter__(self) -> Lock:
        self.connection.execute("BEGIN EXCLUSIVE")
        return self

    def __exit__(self, *_: object) -> None:
        self.connection.execute("ROLLBACK")
        self.connection.close()


def test_runs_handed_over_are_written_with_their_newest_state(
    writer: RecordWriter, store: RunStore
) -> None:
    run = make_run()
    writer.put_runs([run])
    run.status, run.exit_code, run.finished_at = RunStatus.succeeded, 0, T0 + timedelta(1)
    writer.put_runs([run])  # the same run again, ended: one row, the newest state

    assert writer.wait_written(5)
    assert store.for_task("job") == [run]
    assert writer.pending_run(run.id) is None


def test_while_the_store_is_locked_records_wait_in_the_journal_and_are_found(
    writer: RecordWriter, store: RunStore, tmp_path: Path
) -> None:
    journal = tmp_path / "journal" / "records.jsonl"
    runs = [make_run(RunStatus.succeeded) for _ in range(5)]
    with Lock(tmp_path / "tasse.db"):
        writer.put_runs(runs)
        wait_until(lambda: not writer.state.writable, timeout=10)
        wait_until(lambda: writer.journaled >= 1, timeout=5)
        assert journal.stat().st_size > 0
        assert writer.pending_run(runs[0].id) == runs[0]
        assert {r.id for r in writer.pending_runs_of("job")} == {r.id for r in runs}
        assert "locked" in (writer.state.problem or "")
    assert writer.wait_written(15)
    assert writer.state.writable
    assert {r.id for r in store.for_task("job")} == {r.id for r in runs}
    assert journal.stat().st_size == 0


def test_a_new_writer_replays_what_an_earlier_process_journaled(
    store: RunStore, tmp_path: Path
) -> None:
    path = tmp_path / "journal" / "records.jsonl"
    first = RecordWriter(store, Journal(path), deadline=1)
    first.start()
    run = make_run(RunStatus.succeeded)
    with Lock(tmp_path / "tasse.db"):
        first.put_runs([run])
        wait_until(lambda: first.journaled >= 1, timeout=10)
        # The process dies here: what it leaves is its journal as it is now (a copy, as
        # this test's writer thread lives on and would empty the file).
        left = tmp_path / "left.jsonl"
        left.write_bytes(path.read_bytes())
    first.stop(5)
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM tasse_runs"))
    with left.open("ab") as file:
        file.write(b'{"runs": [{"id": "torn')  # a kill in the middle of an append
    second = RecordWriter(store, Journal(left))
    assert second.replay() == 1
    assert store.get(run.id) == run
    assert left.stat().st_size == 0


def test_writes_are_idempotent(writer: RecordWriter, store: RunStore) -> None:
    """A write retried after its first attempt landed (a timeout's case) adds nothing."""
    run = make_run(RunStatus.succeeded)
    for _ in range(3):
        store.put([run])
    writer.put_runs([run])
    assert writer.wait_written(5)
    assert store.for_task("job") == [run]


def test_fire_times_go_through_the_writer(writer: RecordWriter, store: RunStore) -> None:
    times = writer.fire_times
    times.save({"job#0": ("abc", T0), "job#1": ("def", None)})
    times.forget(["job#1"])
    assert writer.wait_written(5)
    assert times.load() == {"job#0": ("abc", T0)}


def test_a_full_journal_keeps_records_in_memory(store: RunStore, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "records.jsonl", max_bytes=200)
    with pytest.raises(JournalFullError, match="reached its limit"):
        journal.append([{"runs": [make_run().model_dump(mode="json")]}])
    assert journal.count == 0
    writer = RecordWriter(store, journal, deadline=1)
    writer.start()
    try:
        run = make_run()
        with Lock(tmp_path / "tasse.db"):
            writer.put_runs([run])
            wait_until(lambda: not writer.state.writable, timeout=10)
            time.sleep(0.5)
            assert writer.pending_run(run.id) == run  # not journaled, not lost
        assert writer.wait_written(15)
        assert store.get(run.id) == run
    finally:
        writer.stop(5)


def test_the_heartbeat_proves_writes(writer: RecordWriter, store: RunStore) -> None:
    wait_until(lambda: writer.state.last_write_at is not None, timeout=5)
    with store.engine.connect() as connection:
        rows = connection.execute(text("SELECT name, pid FROM tasse_nodes")).all()
    assert len(rows) == 1


def test_more_records_than_a_batch_at_once_are_all_written(
    writer: RecordWriter, store: RunStore
) -> None:
    runs = [make_run(RunStatus.succeeded) for _ in range(3500)]
    for run in runs:
        writer.put_runs([run])  # one at a time: the inbox holds more than a batch
    assert writer.wait_written(30)
    assert len(store.for_task("job", limit=5000)) == len(runs)


def test_the_writer_does_not_spin_while_the_store_is_down(store: RunStore, tmp_path: Path) -> None:
    """Waiting to retry costs no CPU: a spinning thread would take a core from the loop."""
    # A short heartbeat interval: its time is soon past while records wait to be retried.
    writer = RecordWriter(store, Journal(tmp_path / "records.jsonl"), 2, heartbeat_interval=0.2)
    writer.start()
    try:
        with Lock(tmp_path / "tasse.db"):
            writer.put_runs([make_run()])
            wait_until(lambda: not writer.state.writable, timeout=10)
            started = time.process_time()
            time.sleep(3)
            used = time.process_time() - started
        assert used < 0.5, f"the process used {used:.2f} s of CPU in 3 s of outage"
    finally:
        writer.stop(5)
