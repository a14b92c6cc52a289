"""`--store-table-name jobs` names the defined tasks' table exactly `jobs`, as Supertask's
is; stores made before keep their tasks; a table of that name that is not Tasse's (Supertask's
APScheduler job table) is refused, never altered. On SQLite and PostgreSQL, each test with
names (and on PostgreSQL a schema) of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Float, LargeBinary, MetaData, Table, Unicode, select, text
from sqlalchemy.schema import CreateSchema

from tasse.cli.main import main
from tasse.errors import ForeignTableError
from tasse.store import migrations as store_migrations
from tasse.store.database import make_engine
from tasse.store.migrations import StoreNames, current_revision
from tasse.store.runs import RunStore
from tests.store.test_store import DEFINITION, Place, make_place, make_run, table_names, unique

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    """A store of the test's own: its table name, and on PostgreSQL its own schema."""
    schema = unique("s") if request.param == "postgresql" else None
    place = make_place(request.param, tmp_path, schema=schema)
    try:
        yield place
    finally:
        _drop_schema(place)


def _drop_schema(place: Place) -> None:
    if place.schema is None:
        return  # SQLite's file goes with tmp_path
    engine = make_engine(place.address)
    try:
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {place.schema} CASCADE"))
    finally:
        engine.dispose()


def _create_supertask_job_table(place: Place) -> None:
    """The job table APScheduler's SQLAlchemyJobStore makes for Supertask, with one job."""
    engine = make_engine(place.address)
    try:
        with engine.begin() as connection:
            if place.schema:
                connection.execute(CreateSchema(place.schema))
            jobs = Table(
                place.table_name,
                MetaData(schema=place.schema),
                Column("id", Unicode(191), primary_key=True),
                Column("next_run_time", Float(25), index=True),
                Column("job_state", LargeBinary, nullable=False),
            )
            jobs.create(connection)
            connection.execute(jobs.insert(), {"id": "1", "next_run_time": 1.5, "job_state": b"x"})
    finally:
        engine.dispose()


def _supertask_rows(place: Place) -> list[tuple[object, ...]]:
    engine = make_engine(place.address)
    try:
        with engine.connect() as connection:
            table = Table(place.table_name, MetaData(schema=place.schema), autoload_with=connection)
            columns = [column.name for column in table.columns]
            assert columns == ["id", "next_run_time", "job_state"]  # not altered either
            return [tuple(row) for row in connection.execute(select(table))]
    finally:
        engine.dispose()


def test_a_named_store_keeps_its_tasks_in_a_table_of_exactly_that_name(place: Place) -> None:
    store = place.open()
    try:
        store.save_task("report", "api", DEFINITION)
        store.add(make_run())
        held = table_names(store.engine, place.schema)
        assert place.table_name in held
        assert f"{place.table_name}_runs" in held
        assert f"{place.table_name}_tasks" not in held
        assert [task.name for task in store.tasks()] == ["report"]
    finally:
        store.close()


def test_the_default_name_keeps_its_tasks_in_tasse_tasks(tmp_path: Path) -> None:
    store = RunStore(f"sqlite:///{tmp_path / 'tasse.db'}")
    try:
        store.save_task("report", "api", DEFINITION)
        held = table_names(store.engine)
        assert "tasse_tasks" in held
        assert "tasse" not in held
    finally:
        store.close()


def test_a_store_made_before_keeps_its_tasks_under_the_new_name(place: Place) -> None:
    store = place.open()
    try:
        store.save_task("report", "api", DEFINITION)
        # The store as revision 0007 left it: the tasks in `<table>_tasks`.
        store_migrations.downgrade(store.engine, store.names, "0007")
        held = table_names(store.engine, place.schema)
        assert f"{place.table_name}_tasks" in held
        assert place.table_name not in held
    finally:
        store.close()

    reopened = place.open()
    try:
        assert [task.name for task in reopened.tasks()] == ["report"]
        assert f"{place.table_name}_tasks" not in table_names(reopened.engine, place.schema)
        with reopened.engine.connect() as connection:
            assert current_revision(connection, reopened.names) == store_migrations.HEAD
    finally:
        reopened.close()


def test_supertasks_job_table_is_refused_and_left_as_it_is(place: Place) -> None:
    _create_supertask_job_table(place)

    with pytest.raises(ForeignTableError) as refused:
        place.open()

    message = str(refused.value)
    shown = f"{place.schema}.{place.table_name}" if place.schema else place.table_name
    assert f"table {shown!r} is Supertask's job table" in message
    assert "--store-table-name" in message
    assert "--pre-seed-jobs" in message
    assert _supertask_rows(place) == [("1", 1.5, b"x")]
    # Nothing of Tasse's was made beside it either.
    engine = make_engine(place.address)
    try:
        assert table_names(engine, place.schema) == {place.table_name}
    finally:
        engine.dispose()


def test_the_command_line_says_why_in_one_line_and_serves_nothing(
    place: Place, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _create_supertask_job_table(place)
    flags = ["--store-address", place.address, "--store-table-name", place.table_name]
    if place.schema:
        flags += ["--store-schema-name", place.schema]

    # Supertask's way: flags alone, no `serve`.
    assert main([*flags, "--data-dir", str(tmp_path / "data")]) == 1

    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "is Supertask's job table (APScheduler's" in error
    assert "drop that table and re-seed" in error
    assert _supertask_rows(place) == [("1", 1.5, b"x")]


def test_another_programs_table_of_that_name_is_refused_naming_its_columns(
    tmp_path: Path,
) -> None:
    address = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = make_engine(address)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE invoices (number INTEGER, total REAL)"))
    finally:
        engine.dispose()

    with pytest.raises(ForeignTableError, match=r"another program's table \(with number, total\)"):
        RunStore(address, table_name="invoices")


def test_the_names_say_where_each_table_is() -> None:
    named = StoreNames("jobs", "ext")
    assert (named.tasks, named.runs, named.shown_tasks) == ("jobs", "jobs_runs", "ext.jobs")
    assert StoreNames().tasks == "tasse_tasks"
