"""Pauses in the job store, on every backend, and through the writer and its journal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tasse.store.journal import Journal
from tasse.store.pauses import Pause, PauseTable
from tasse.store.records import PauseChanges, coalesce, entry_of, op_from_entry
from tasse.store.runs import RunStore
from tasse.store.writer import RecordWriter
from tests.http.test_api import wait_until
from tests.store.test_store import ALL, LASTING, Place, place_fixture
from tests.store.test_writer import Lock

T0 = datetime(2026, 3, 29, 0, 30, 0, 123456, tzinfo=UTC)


@pytest.fixture(params=ALL)
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    yield from place_fixture(request, tmp_path)


@pytest.fixture(params=LASTING)
def lasting_place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    yield from place_fixture(request, tmp_path)


@pytest.fixture
def store(place: Place) -> Iterator[RunStore]:
    opened = place.open()
    yield opened
    opened.close()


def test_pauses_read_back_as_written_and_resumes_remove_them(store: RunStore) -> None:
    table = PauseTable(store)
    table.save({"backup": Pause(T0, "disk swap ☂"), "report": Pause(T0 + timedelta(1))})
    assert table.load() == {
        "backup": Pause(T0, "disk swap ☂"),  # microseconds and zone kept, any text
        "report": Pause(T0 + timedelta(1)),
    }
    table.save({"backup": None, "never-paused": None})
    assert table.load() == {"report": Pause(T0 + timedelta(1))}


def test_writing_a_pause_again_changes_nothing(store: RunStore) -> None:
    """A write retried after its first attempt landed (a timeout's case) leaves one row."""
    table = PauseTable(store)
    for _ in range(3):
        table.save({"backup": Pause(T0, "why")})
    assert table.load() == {"backup": Pause(T0, "why")}


def test_pauses_outlive_the_store_connection(lasting_place: Place) -> None:
    first = lasting_place.open()
    try:
        PauseTable(first).save({"backup": Pause(T0)})
    finally:
        first.close()
    second = lasting_place.open()
    try:
        assert PauseTable(second).load() == {"backup": Pause(T0)}
    finally:
        second.close()


def test_a_pause_is_a_journal_line_and_back() -> None:
    op = PauseChanges({"backup": Pause(T0, "why"), "report": None})
    assert op_from_entry(entry_of(op)) == op
    assert op_from_entry({"pauses": {"backup": ["not a time", None]}}) is None


def test_in_a_batch_the_newest_pause_of_a_task_wins() -> None:
    batch = [
        PauseChanges({"backup": Pause(T0), "report": Pause(T0)}),
        PauseChanges({"backup": None}),
    ]
    assert coalesce(batch).pauses == {"backup": None, "report": Pause(T0)}


def test_a_pause_while_the_store_is_locked_is_journaled_and_lands_later(tmp_path: Path) -> None:
    store = RunStore(f"sqlite:///{tmp_path / 'tasse.db'}")
    journal = tmp_path / "journal" / "records.jsonl"
    writer = RecordWriter(store, Journal(journal), deadline=2)
    writer.start()
    try:
        with Lock(tmp_path / "tasse.db"):
            writer.save_pauses({"backup": Pause(T0, "why")})
            wait_until(lambda: writer.journaled >= 1, timeout=10)
            assert b'"pauses"' in journal.read_bytes()
            assert PauseTable(store).load() == {}  # reads still work: not there yet
        assert writer.wait_written(15)
        assert PauseTable(store).load() == {"backup": Pause(T0, "why")}
        assert journal.stat().st_size == 0
    finally:
        writer.stop(5)
        store.close()


def test_a_resume_an_earlier_process_journaled_is_replayed(tmp_path: Path) -> None:
    store = RunStore(f"sqlite:///{tmp_path / 'tasse.db'}")
    try:
        PauseTable(store).save({"backup": Pause(T0)})
        journal = Journal(tmp_path / "records.jsonl")
        journal.append([entry_of(PauseChanges({"backup": None, "report": Pause(T0)}))])
        assert RecordWriter(store, Journal(journal.path)).replay() == 1
        assert PauseTable(store).load() == {"report": Pause(T0)}
    finally:
        store.close()
