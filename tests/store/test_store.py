"""The job store in real databases: `memory://`, an SQLite file, PostgreSQL and MariaDB.

PostgreSQL and MariaDB tests skip with a reason when the server is not there, and fail
instead with TASSE_REQUIRE_SERVICES=1 (CI). Each test gets its own table names (and
schema), dropped afterwards, so runs never see each other's rows.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    inspect,
    text,
)
from sqlalchemy.exc import OperationalError

from tasse.cli.main import main
from tasse.models import Run, RunOutline, RunStatus, RunTrigger
from tasse.settings import Settings
from tasse.store import migrations as store_migrations
from tasse.store.database import make_engine
from tasse.store.migrations import HEAD, StoreNames, current_revision
from tasse.store.runs import RunStore
from tasse.store.tables import StoredTask
from tasse.store.windows import RunWindow, in_window

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/test"
SERVERS = {
    "postgresql": (POSTGRES_URL, "psycopg", "postgres"),
    "mariadb": (MARIADB_URL, "pymysql", "mysql"),
}
BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 3, 29, 0, 30, 0, 123456, tzinfo=UTC)  # an hour before Berlin's DST change


def require_server(backend: str) -> str:
    """The server's URL; skip when it (or its driver) is missing, fail under CI's flag."""
    url, driver, extra = SERVERS[backend]
    missing = pytest.fail if os.environ.get("TASSE_REQUIRE_SERVICES") == "1" else pytest.skip
    try:
        __import__(driver)
    except ImportError:
        missing(f"{driver} is not installed (pip install 'tasse[{extra}]')")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        missing(f"{backend} is not reachable at {url}: {error.orig}")
    finally:
        engine.dispose()
    return url


@dataclass
class Place:
    """Where one test's store lives: a backend, its address, and names of the test's own."""

    backend: str
    address: str
    table_name: str
    schema: str | None = None

    @property
    def names(self) -> StoreNames:
        return StoreNames(self.table_name, self.schema)

    def open(self) -> RunStore:
        return RunStore(self.address, self.schema, self.table_name)

    def drop(self) -> None:
        """Remove what the test made (memory and SQLite go with their temporary folder)."""
        if self.backend not in SERVERS:
            return
        engine = make_engine(self.address)
        names, prefix = self.names, f"{self.schema}." if self.schema else ""
        try:
            with engine.begin() as connection:
                for name in (*names.all_tables, names.prefixed_tasks, names.version_table):
                    connection.execute(text(f"DROP TABLE IF EXISTS {prefix}{name}"))
                if self.schema:
                    cascade = " CASCADE" if self.backend == "postgresql" else ""
                    connection.execute(text(f"DROP SCHEMA IF EXISTS {self.schema}{cascade}"))
        finally:
            engine.dispose()


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def node_store(prefix: str, node: str = "a") -> Iterator[RunStore]:
    """A store of the test's own on the shared PostgreSQL (cluster mode's backend), opened
    as cluster node `node`; its tables are dropped afterwards."""
    place = Place("postgresql", require_server("postgresql"), unique(prefix))
    opened = RunStore(place.address, table_name=place.table_name, node=node)
    try:
        yield opened
    finally:
        opened.close()
        place.drop()


def make_place(backend: str, tmp_path: Path, schema: str | None = None) -> Place:
    if backend in SERVERS:
        address = require_server(backend)
    elif backend == "sqlite":
        address = f"sqlite:///{tmp_path / 'tasse.db'}"
    else:
        address = "memory://"
    return Place(backend, address, unique("t"), schema)


def place_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    place = make_place(request.param, tmp_path)
    place.drop()
    try:
        yield place
    finally:
        place.drop()


ALL = ["memory", "sqlite", "postgresql", "mariadb"]
LASTING = ["sqlite", "postgresql", "mariadb"]  # a second store sees the first one's rows


@pytest.fixture(params=ALL)
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    """Table names of the test's own on each backend, dropped afterwards."""
    yield from place_fixture(request, tmp_path)


@pytest.fixture(params=LASTING)
def lasting_place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    """The same, on the backends that keep rows between stores."""
    yield from place_fixture(request, tmp_path)


@pytest.fixture
def store(place: Place) -> Iterator[RunStore]:
    """A RunStore on each backend, closed afterwards."""
    store = place.open()
    try:
        yield store
    finally:
        store.close()


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


def table_names(engine: Engine, schema: str | None = None) -> set[str]:
    return set(inspect(engine).get_table_names(schema=schema))


class Statements:
    """The SQL an engine sends while the block runs."""

    def __init__(self, engine: Engine):
        self.engine, self.sent = engine, list[str]()

    def _record(self, *args: Any) -> None:
        self.sent.append(args[2])

    def __enter__(self) -> list[str]:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self.sent

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


# Runs


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
    assert stored.scheduled_at == T0  # microseconds too (MariaDB's DATETIME drops them)


def test_an_update_records_the_outcome(store: RunStore) -> None:
    run = make_run(status=RunStatus.running)
    store.add(run)
    run.status, run.exit_code, run.error = RunStatus.failed, 3, "exited with code 3 — ✗"
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
    # paging: `before` the last id seen gives the next older page, down to nothing
    assert store.for_task("report", limit=2, before=runs[2].id) == [runs[1], runs[0]]
    assert store.for_task("report", before=runs[0].id) == []


def test_task_names_differing_in_case_are_different_tasks(store: RunStore) -> None:
    # MariaDB compares case-insensitively unless the table says otherwise.
    upper, lower = make_run("Report", 0), make_run("report", 1)
    store.add(upper)
    store.add(lower)
    assert store.for_task("Report") == [upper]
    assert store.latest_by_task().keys() == {"Report", "report"}


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

    assert sorted(store.interrupt_unfinished(now)) == sorted([running.id, queued.id])
    for run in (running, queued):
        stored = store.get(run.id)
        assert stored is not None
        assert stored.status is RunStatus.interrupted
        assert stored.finished_at == now
        assert stored.error
    assert store.get(done.id) == done
    assert store.interrupt_unfinished(now) == []


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


# Defined tasks

DEFINITION: dict[str, Any] = {
    "command": ["python", "-c", "print('grüße')"],
    "schedules": ["*/5 * * * *", {"trigger": "cron", "hour": 9}],
    "timeout": 30.5,
    "enabled": True,
    "env": {},
    "description": None,
}


def test_a_saved_task_reads_back_as_it_was_written(store: RunStore) -> None:
    before = datetime.now(UTC)
    saved = store.save_task("report", "api", DEFINITION)

    assert saved == StoredTask("report", "api", DEFINITION, saved.created_at, saved.created_at)
    assert saved.created_at.tzinfo is UTC
    assert before - timedelta(seconds=1) <= saved.created_at <= datetime.now(UTC)
    assert store.get_task("report") == saved
    assert store.tasks() == [saved]


def test_saving_again_replaces_the_definition_and_keeps_created_at(store: RunStore) -> None:
    first = store.save_task("report", "seed", DEFINITION)
    changed = {**DEFINITION, "timeout": 60}
    second = store.save_task("report", "api", changed)

    assert (second.source, second.definition) == ("api", changed)
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert store.tasks() == [second]


def test_an_unknown_task_is_none_and_deleting_it_says_so(store: RunStore) -> None:
    store.save_task("report", "api", DEFINITION)

    assert store.get_task("nobody") is None
    assert store.delete_task("nobody") is False
    assert store.delete_task("report") is True
    assert store.get_task("report") is None
    assert store.tasks() == []


def test_tasks_are_deleted_by_source(store: RunStore) -> None:
    for name, source in [("a", "api"), ("b", "seed"), ("c", "seed"), ("d", "api")]:
        store.save_task(name, source, DEFINITION)

    assert store.delete_tasks(["seed"]) == 2
    assert [task.name for task in store.tasks()] == ["a", "d"]
    assert store.delete_tasks([]) == 0
    assert store.delete_tasks({"api", "seed"}) == 2
    assert store.tasks() == []


def test_tasks_are_ordered_by_name_the_same_on_every_backend(store: RunStore) -> None:
    names = ["b", "B", "a_b", "a-b", "a.b", "A", "a", "10", "9"]
    for name in names:
        store.save_task(name, "api", {"n": name})

    assert [task.name for task in store.tasks()] == sorted(names)
    assert {task.name: task.definition["n"] for task in store.tasks()} == {n: n for n in names}


def test_a_task_name_may_have_64_characters_and_no_more(store: RunStore) -> None:
    longest = "x" * 64
    store.save_task(longest, "api", DEFINITION)
    assert store.get_task(longest) is not None

    with pytest.raises(ValueError, match="must be 1 to 64 characters long"):
        store.save_task(longest + "x", "api", DEFINITION)


def test_ten_thousand_tasks_load_in_one_query(store: RunStore) -> None:
    with store.engine.begin() as connection:  # inserted at once: saving one by one is slow
        connection.execute(
            store._tasks.insert(),
            [
                {"name": f"t{i:05}", "source": "api", "definition": DEFINITION}
                | {"created_at": T0, "updated_at": T0}
                for i in range(10_000)
            ],
        )
    with Statements(store.engine) as sent:
        tasks = store.tasks()

    assert len(sent) == 1
    assert [task.name for task in tasks[:2]] == ["t00000", "t00001"]
    assert tasks[-1] == StoredTask("t09999", "api", DEFINITION, T0, T0)


# Names, schemas and migrations


def test_the_tables_have_the_configured_names(store: RunStore, place: Place) -> None:
    tables = table_names(store.engine)
    made = {place.table_name} | {  # the defined tasks' table is named exactly as the store
        f"{place.table_name}_{part}"
        for part in (
            "runs",
            "fire_times",
            "nodes",
            "pauses",
            "outbox",
            "leases",
            "fire_claims",
            "commands",
            "alembic_version",
        )
    }

    assert {name for name in tables if name.startswith(place.table_name)} == made
    if place.backend not in SERVERS:  # a server's test database may hold others' tables
        assert tables == made


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_a_schema_holds_the_tables_and_is_created_if_missing(backend: str, tmp_path: Path) -> None:
    place = make_place(backend, tmp_path, schema=unique("s"))
    place.drop()
    try:
        store = place.open()
        try:
            store.add(make_run())
            store.save_task("report", "api", DEFINITION)
            with store.engine.connect() as connection:
                held = connection.execute(
                    text(
                        "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"
                    ),
                    {"s": place.schema},
                ).scalars()
                assert set(held) == {
                    f"{place.table_name}_runs",
                    place.table_name,
                    f"{place.table_name}_fire_times",
                    f"{place.table_name}_nodes",
                    f"{place.table_name}_pauses",
                    f"{place.table_name}_outbox",
                    f"{place.table_name}_leases",
                    f"{place.table_name}_fire_claims",
                    f"{place.table_name}_commands",
                    f"{place.table_name}_alembic_version",
                }
            assert place.table_name + "_runs" not in table_names(store.engine)  # default schema
            assert store.for_task("report") == [make_run()]
        finally:
            store.close()
    finally:
        place.drop()


@pytest.mark.parametrize("address", ["memory://", "sqlite:///{tmp_path}/tasse.db"])
def test_sqlite_refuses_a_schema_saying_why(address: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'jobs' cannot be used with SQLite, which has no schemas"):
        RunStore(address.format(tmp_path=tmp_path), schema="jobs")


@pytest.mark.parametrize("name", ["", "1st", "two words", "semi;colon", "x" * 41])
def test_an_unusable_table_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=r"store table name .* cannot be used"):
        RunStore("memory://", table_name=name)


def test_a_new_store_is_at_the_newest_revision(store: RunStore) -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(Path(store_migrations.__file__).parent))
    assert scripts.get_current_head() == HEAD
    with store.engine.connect() as connection:
        assert current_revision(connection, store.names) == HEAD


def test_migrating_again_changes_nothing(store: RunStore) -> None:
    store.add(make_run())
    store.save_task("report", "api", DEFINITION)

    with Statements(store.engine) as sent:
        store.migrate()

    # Two reads: is the version table there, and what does it say (no lock, no DDL).
    assert len(sent) == 2
    assert {statement.split()[0] for statement in sent} <= {"SELECT", "PRAGMA", "DESCRIBE"}
    assert store.get(make_run().id) == make_run()
    assert store.get_task("report") is not None


def test_opening_a_store_again_keeps_its_rows(lasting_place: Place) -> None:
    first = lasting_place.open()
    try:
        first.add(make_run())
        saved = first.save_task("report", "api", DEFINITION)
    finally:
        first.close()
    second = lasting_place.open()
    try:
        assert second.get(make_run().id) == make_run()
        assert second.tasks() == [saved]
    finally:
        second.close()


def create_tasse_0_1_tables(engine: Engine, table_name: str) -> Table:
    """The runs table exactly as Tasse made it before migrations (`metadata.create_all`)."""
    runs = Table(
        f"{table_name}_runs",
        MetaData(),
        Column("id", String(64), primary_key=True),
        Column("task", String(64), nullable=False),
        Column("trigger", String(16), nullable=False),
        Column("status", String(16), nullable=False),
        Column("exit_code", Integer),
        Column("scheduled_at", DateTime),
        Column("started_at", DateTime),
        Column("finished_at", DateTime),
        Column("error", Text),
        Index(f"ix_{table_name}_runs_task_id", "task", "id"),
        Index(f"ix_{table_name}_runs_status", "status"),
    )
    runs.metadata.create_all(engine)
    return runs


def test_a_store_made_before_migrations_upgrades_and_keeps_its_runs(
    lasting_place: Place,
) -> None:
    # Whole seconds: MariaDB tables made then (DATETIME without fsp) keep no more.
    run = make_run(scheduled_at=T0.replace(microsecond=0), started_at=T0.replace(microsecond=0))
    engine = make_engine(lasting_place.address)
    try:
        old = create_tasse_0_1_tables(engine, lasting_place.table_name)
        with engine.begin() as connection:
            row = {**run.model_dump(), "trigger": run.trigger.value, "status": run.status.value}
            naive = {k: v.replace(tzinfo=None) for k, v in row.items() if isinstance(v, datetime)}
            connection.execute(old.insert(), {**row, **naive})
    finally:
        engine.dispose()

    store = lasting_place.open()
    try:
        assert store.get(run.id) == run
        assert store.save_task("report", "api", DEFINITION).name == "report"
        with store.engine.connect() as connection:
            assert current_revision(connection, store.names) == HEAD
    finally:
        store.close()


def test_tasse_0_1s_default_table_is_adopted_as_it_is(tmp_path: Path) -> None:
    address = f"sqlite:///{tmp_path / 'tasse.db'}"
    engine = make_engine(address)
    try:
        create_tasse_0_1_tables(engine, "tasse")
    finally:
        engine.dispose()
    store = RunStore(address)
    try:
        store.add(make_run())
        assert table_names(store.engine) == {
            "tasse_runs",
            "tasse_tasks",
            "tasse_fire_times",
            "tasse_nodes",
            "tasse_pauses",
            "tasse_outbox",
            "tasse_leases",
            "tasse_fire_claims",
            "tasse_commands",
            "tasse_alembic_version",
        }
    finally:
        store.close()


def test_a_downgrade_to_base_removes_the_tables(lasting_place: Place) -> None:
    store = lasting_place.open()
    try:
        store_migrations.downgrade(store.engine, store.names, "base")
        names = store.names
        assert not {names.runs, names.tasks} & table_names(store.engine)
        store.migrate()
        assert {names.runs, names.tasks} <= table_names(store.engine)
    finally:
        store.close()


def test_stores_opening_together_migrate_once(lasting_place: Place) -> None:
    errors: list[BaseException] = []
    opened: list[RunStore] = []
    start = threading.Barrier(6)

    def open_store() -> None:
        start.wait()
        try:
            opened.append(lasting_place.open())
        except BaseException as error:  # reported below, with the backend's message
            errors.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in opened:
        store.close()

    assert errors == []
    assert len(opened) == 6


# Addresses and settings


@pytest.mark.parametrize(
    ("address", "driver"),
    [
        ("postgresql://u@db/tasse", "psycopg"),
        ("postgres://u@db/tasse", "psycopg"),
        ("mysql://u@db/tasse", "pymysql"),
        ("mariadb://u@db/tasse", "pymysql"),
    ],
)
def test_a_bare_scheme_gets_the_driver_tasse_installs(address: str, driver: str) -> None:
    engine = make_engine(address)  # connects only when used
    assert engine.dialect.driver == driver
    engine.dispose()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No store variables from the outer shell, and a working folder of our own for `.env`."""
    for name in list(os.environ):
        if name.upper().startswith(("TASSE_", "ST_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_supertasks_variable_names_are_honoured(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ST_STORE_ADDRESS", "postgresql://st@db/jobs")
    monkeypatch.setenv("ST_STORE_SCHEMA_NAME", "ext")
    monkeypatch.setenv("ST_STORE_TABLE_NAME", "jobs")

    settings = Settings()

    assert settings.store_url == "postgresql://st@db/jobs"
    assert (settings.store_schema_name, settings.store_table_name) == ("ext", "jobs")


def test_tasses_names_win_over_supertasks(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in [("ADDRESS", "memory://"), ("SCHEMA_NAME", "a"), ("TABLE_NAME", "b")]:
        monkeypatch.setenv(f"ST_STORE_{name}", "st_" + value)
        monkeypatch.setenv(f"TASSE_STORE_{name}", value)

    settings = Settings()

    assert (settings.store_url, settings.store_schema_name, settings.store_table_name) == (
        "memory://",
        "a",
        "b",
    )


def test_supertasks_names_work_in_dotenv_and_flags_win(clean_env: Path) -> None:
    (clean_env / ".env").write_text("ST_STORE_TABLE_NAME=jobs\nST_STORE_SCHEMA_NAME=ext\n")

    assert (Settings().store_schema_name, Settings().store_table_name) == ("ext", "jobs")
    assert Settings(store_table_name="flagged").store_table_name == "flagged"


def test_the_store_names_default_to_tasse_in_the_default_schema(clean_env: Path) -> None:
    settings = Settings()
    assert (settings.store_schema_name, settings.store_table_name) == (None, "tasse")


def test_an_empty_schema_name_means_the_default_schema(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ST_STORE_SCHEMA_NAME", "")
    assert Settings().store_schema_name is None


@pytest.mark.parametrize(
    ("flag", "value"), [("--store-table-name", "no-dashes"), ("--store-schema-name", "1st")]
)
def test_a_bad_store_name_flag_is_named(
    clean_env: Path, flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--data-dir", str(clean_env), flag, value]) == 2

    error = capsys.readouterr().err
    assert flag[2:].replace("-", "_") in error
    assert f"{value!r} cannot be used" in error


# Pruning (retention)


def ids(runs: list[Run]) -> list[str]:
    return [run.id for run in runs]


def test_pruning_by_count_keeps_the_tasks_newest_runs(store: RunStore) -> None:
    runs = [make_run(minutes=i) for i in range(5)]
    other = make_run("other", minutes=0)
    for run in [*runs, other]:
        store.add(run)

    assert store.prune_runs("report", None, keep=2) == ids(runs[:3])  # oldest first
    assert store.for_task("report") == runs[:2:-1]
    assert store.for_task("other") == [other]
    assert store.prune_runs("report", None, keep=2) == []


def test_pruning_by_age_compares_the_creation_time_in_the_run_id(store: RunStore) -> None:
    runs = [make_run(minutes=i, finished_at=T0 + timedelta(days=1)) for i in range(3)]
    for run in runs:
        store.add(run)

    # Made before the cutoff: pruned though it finished after it (a long run).
    assert store.prune_runs("report", T0 + timedelta(minutes=1), keep=None) == [runs[0].id]
    in_berlin = (T0 + timedelta(minutes=2)).astimezone(BERLIN)  # the same moment
    assert store.prune_runs("report", in_berlin, keep=None) == [runs[1].id]
    assert store.for_task("report") == [runs[2]]


def test_a_run_beyond_either_limit_is_pruned(store: RunStore) -> None:
    runs = [make_run(minutes=i) for i in range(4)]
    for run in runs:
        store.add(run)

    pruned = store.prune_runs("report", T0 + timedelta(minutes=2), keep=3)
    assert pruned == ids(runs[:2])  # runs[0] by count and age, runs[1] by age
    assert store.for_task("report") == runs[:1:-1]


def test_unfinished_runs_are_never_pruned(store: RunStore) -> None:
    queued = make_run(minutes=0, status=RunStatus.queued)
    running = make_run(minutes=1, status=RunStatus.running)
    done = [make_run(minutes=i) for i in range(2, 5)]
    for run in [queued, running, *done]:
        store.add(run)

    assert store.prune_runs("report", T0 + timedelta(days=1), keep=1) == ids(done)
    assert ids(store.for_task("report")) == [running.id, queued.id]


def test_keep_zero_prunes_every_finished_run_and_none_prunes_nothing(store: RunStore) -> None:
    runs = [make_run(minutes=i) for i in range(3)]
    for run in runs:
        store.add(run)

    assert store.prune_runs("report", None, keep=None) == []
    assert store.prune_runs("report", None, keep=0) == ids(runs)
    assert store.for_task("report") == []


def test_sparing_the_newest_keeps_a_tasks_last_run_whatever_its_age(store: RunStore) -> None:
    runs = [make_run(minutes=i) for i in range(3)]
    for run in runs:
        store.add(run)
    long_after = T0 + timedelta(days=90)

    assert store.prune_runs("report", long_after, None, spare_newest=True) == ids(runs[:2])
    assert store.prune_runs("report", long_after, None, spare_newest=True) == []
    assert store.prune_runs("report", long_after, None) == [runs[2].id]


def test_pruning_goes_in_batches_of_the_limit(store: RunStore) -> None:
    runs = [make_run(minutes=i) for i in range(7)]
    for run in runs:
        store.add(run)

    batches = [store.prune_runs("report", None, keep=1, limit=4) for _ in range(3)]
    assert batches == [ids(runs[:4]), ids(runs[4:6]), []]
    assert store.for_task("report") == [runs[6]]


def test_tasks_with_runs_names_each_task_once(store: RunStore) -> None:
    for run in [make_run("b", 0), make_run("a", 1), make_run("b", 2), make_run("B", 3)]:
        store.add(run)
    assert store.tasks_with_runs() == ["B", "a", "b"]


# Runs across tasks (store/windows.py)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_window_holds_the_runs_whose_time_overlaps_it_live_ones_included(
    store: RunStore,
) -> None:
    ended_before = make_run("a", 0, finished_at=at(5))
    ended_inside = make_run("b", 1, finished_at=at(12))  # began before the window
    inside = make_run("a", 14, finished_at=at(15))
    live = make_run("c", 2, status=RunStatus.running)  # began long before, still running
    # a fire in the window that did not run, recorded later; a run waiting since the window
    missed = make_run("b", 30, status=RunStatus.missed, started_at=None, scheduled_at=at(15))
    missed.finished_at = at(30)
    queued = make_run("c", 16, status=RunStatus.queued, started_at=None)
    began_after = make_run("a", 25, finished_at=at(26))
    every = [ended_before, ended_inside, inside, live, missed, queued, began_after]
    store.add(*every)
    now = at(60)
    window = RunWindow(since=at(10), until=at(20))

    held = [missed, queued, inside, live, ended_inside]  # newest first (by id)
    assert store.in_window(window, now) == held
    assert [run for run in every if in_window(run, window, now)] == sorted(
        held, key=lambda run: every.index(run)
    )  # the Python predicate, for runs the store does not have yet, agrees
    assert store.in_window(RunWindow(at(10), at(20), tasks=frozenset({"a"})), now) == [inside]
    running = frozenset({RunStatus.running, RunStatus.queued})
    assert store.in_window(RunWindow(at(10), at(20), statuses=running), now) == [queued, live]
    first = store.in_window(RunWindow(at(10), at(20), limit=2), now)
    assert first == held[:2]
    assert store.in_window(RunWindow(at(10), at(20), before=first[-1].id), now) == held[2:]
    # open-ended: everything from a moment on; a live run is not in a window after now
    assert store.in_window(RunWindow(since=at(25)), now) == [missed, began_after, queued, live]
    assert store.in_window(RunWindow(since=at(61)), now) == []
    # what charts read: the same runs, outlined
    assert store.outlines_in_window(window, now) == [RunOutline.of(run) for run in held]


def test_runs_are_counted_by_status_over_a_window_in_one_query(store: RunStore) -> None:
    store.add(
        make_run("a", 0, finished_at=at(1)),  # ended before the window
        make_run("a", 3, finished_at=at(11)),  # began before it, ended in it
        make_run("b", 11, status=RunStatus.failed, finished_at=at(12)),
        make_run("c", 2, status=RunStatus.running),
        make_run("d", 30, status=RunStatus.queued, started_at=None),  # a retry, due later
    )
    with Statements(store.engine) as sent:
        counted = store.count_by_status(at(5), at(20))
    assert len(sent) == 1
    assert counted == {"succeeded": 1, "failed": 1, "running": 1}
    assert store.count_by_status(at(25), at(20)) == {}  # a window after now holds nothing


def test_recent_outcomes_are_each_tasks_newest_runs_in_one_query(store: RunStore) -> None:
    runs = {
        "a": [make_run("a", minute) for minute in range(25)],
        "b": [make_run("b", minute, status=RunStatus.failed) for minute in range(3)],
        "d": [make_run("d", minute) for minute in range(5)],
    }
    store.add(*(run for task_runs in runs.values() for run in task_runs))

    with Statements(store.engine) as sent:
        found = store.recent_outcomes(["a", "b", "c"], count=20)

    assert len(sent) == 1
    assert found == {"a": runs["a"][::-1][:20], "b": runs["b"][::-1], "c": []}
    assert store.recent_outcomes(["b"], count=2) == {"b": runs["b"][:0:-1]}
    assert store.recent_outcomes([], count=20) == {}
    many = ["a", *(f"n{index}" for index in range(1000))]  # SQLite: 500 parts in a UNION at most
    with Statements(store.engine) as sent:
        strips = store.recent_outcomes(many, count=1)
    assert len(sent) == 3
    assert strips["a"] == runs["a"][-1:]
    assert len(strips) == 1001
