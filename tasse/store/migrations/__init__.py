"""The job store's schema, versioned with Alembic and brought to the newest revision at start.

Revisions live in `versions/`, one file each, numbered; there is no alembic.ini: the
configuration is built here. A revision reads where its tables go from
`context.config.attributes["names"]` (a `StoreNames`), since every store names them.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, column, inspect, select, table, text
from sqlalchemy.schema import CreateSchema

from tasse.errors import ForeignTableError
from tasse.values import check_schema_name, check_table_name

if TYPE_CHECKING:
    from alembic.config import Config

#: the newest revision in versions/ (a test checks they agree)
HEAD = "0010"
#: the table name a store has when none is set; its tasks table stays `tasse_tasks`
DEFAULT_TABLE = "tasse"
#: the columns of APScheduler's SQLAlchemy job table, which Supertask keeps its jobs in
_APSCHEDULER_COLUMNS = frozenset({"id", "next_run_time", "job_state"})
#: what makes a table Tasse's defined tasks
_TASKS_COLUMNS = frozenset({"name", "source", "definition"})
#: Alembic's `context` and `op` are module globals: one migration at a time per process
_ALEMBIC = threading.Lock()


@dataclass(frozen=True)
class StoreNames:
    """Where a store's tables live: `<table>` (the defined tasks), `<table>_runs`, … in
    `schema` if set; the default table name keeps its tasks in `tasse_tasks`."""

    table: str = DEFAULT_TABLE
    schema: str | None = None

    def __post_init__(self) -> None:
        check_table_name(self.table)
        object.__setattr__(self, "schema", check_schema_name(self.schema))

    @property
    def runs(self) -> str:
        """The run history table."""
        return f"{self.table}_runs"

    @property
    def tasks(self) -> str:
        """The API- and seed-defined tasks table: named exactly as the store, as Supertask's."""
        # The default layout is older than that rule, and stores made with it stay as they are.
        return self.prefixed_tasks if self.table == DEFAULT_TABLE else self.table

    @property
    def prefixed_tasks(self) -> str:
        """Where the defined tasks were before revision 0008 (`<table>_tasks`)."""
        return f"{self.table}_tasks"

    @property
    def shown_tasks(self) -> str:
        """The tasks table as messages name it, with its schema."""
        return f"{self.schema}.{self.tasks}" if self.schema else self.tasks

    @property
    def fire_times(self) -> str:
        """Each schedule's next fire time, kept across restarts."""
        return f"{self.table}_fire_times"

    @property
    def nodes(self) -> str:
        """The servers using the store, with their heartbeats."""
        return f"{self.table}_nodes"

    @property
    def pauses(self) -> str:
        """The paused tasks, by name, kept across restarts."""
        return f"{self.table}_pauses"

    @property
    def outbox(self) -> str:
        """The notifications waiting to be delivered, and those delivered or given up."""
        return f"{self.table}_outbox"

    @property
    def leases(self) -> str:
        """The cluster's leases (the scheduler's), each with its holder and fencing token."""
        return f"{self.table}_leases"

    @property
    def fire_claims(self) -> str:
        """One row per task and nominal fire time: the node that won the fire."""
        return f"{self.table}_fire_claims"

    @property
    def commands(self) -> str:
        """Requests one cluster node leaves for another (a manual run, a cancel)."""
        return f"{self.table}_commands"

    @property
    def all_tables(self) -> tuple[str, ...]:
        """Every table the migrations make, but Alembic's own."""
        return (
            self.runs,
            self.tasks,
            self.fire_times,
            self.nodes,
            self.pauses,
            self.outbox,
            self.leases,
            self.fire_claims,
            self.commands,
        )

    @property
    def version_table(self) -> str:
        """Alembic's record of the revision the tables are at."""
        return f"{self.table}_alembic_version"


def current_revision(connection: Connection, names: StoreNames) -> str | None:
    """The revision the store's tables are at; None before the first migration."""
    if not inspect(connection).has_table(names.version_table, schema=names.schema):
        return None
    versions = table(names.version_table, column("version_num"), schema=names.schema)
    return connection.execute(select(versions.c.version_num)).scalar()


def migrate(engine: Engine, names: StoreNames) -> None:
    """Bring the store's tables to HEAD (creating the schema first); a no-op when there."""
    with engine.connect() as connection:
        if current_revision(connection, names) == HEAD:
            return  # the usual start: no lock taken, Alembic not even imported
    # A new transaction, locked before its first read: MySQL's would otherwise go on
    # seeing the revision from before another server's upgrade.
    with _locked_transaction(engine, names) as connection:
        refuse_foreign_tasks_table(connection, names)
        if names.schema:
            connection.execute(CreateSchema(names.schema, if_not_exists=True))
        _run(connection, names, "upgrade", "head")


def refuse_foreign_tasks_table(connection: Connection, names: StoreNames) -> None:
    """Raise ForeignTableError if the tasks table's name is taken by a table not Tasse's."""
    inspector = inspect(connection)
    if not inspector.has_table(names.tasks, schema=names.schema):
        return
    columns = {column["name"] for column in inspector.get_columns(names.tasks, names.schema)}
    if columns >= _TASKS_COLUMNS:
        return
    if columns >= _APSCHEDULER_COLUMNS:
        what = "Supertask's job table (APScheduler's, with id, next_run_time and job_state)"
    else:
        what = f"another program's table (with {', '.join(sorted(columns))})"
    raise ForeignTableError(names.shown_tasks, what)


def downgrade(engine: Engine, names: StoreNames, revision: str) -> None:
    """Take the store's tables back to `revision` (`base` drops them all)."""
    with _locked_transaction(engine, names) as connection:
        _run(connection, names, "downgrade", revision)


def _run(connection: Connection, names: StoreNames, action: str, revision: str) -> None:
    # Imported here: Alembic adds about a tenth of a second, needed only when upgrading.
    from alembic import command

    with _ALEMBIC:
        getattr(command, action)(_config(connection, names), revision)


def _config(connection: Connection, names: StoreNames) -> Config:
    from alembic.config import Config

    config = Config()
    location = str(Path(__file__).parent).replace("%", "%%")  # the option is interpolated
    config.set_main_option("script_location", location)
    config.attributes["connection"] = connection
    config.attributes["names"] = names
    return config


@contextmanager
def _lock(connection: Connection, names: StoreNames) -> Iterator[None]:
    # Several servers sharing a store may start together; one migrates, the others wait
    # and then find the tables at HEAD.
    number = zlib.crc32(f"{names.schema}.{names.table}".encode())
    key = f"tasse_migrate_{number:08x}"
    dialect = connection.dialect.name
    if dialect == "postgresql":  # released when the transaction ends
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": number})
    elif dialect == "sqlite":  # the write lock now, not a deadlock at the first write
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect in ("mysql", "mariadb"):
        got = connection.execute(text("SELECT GET_LOCK(:key, 60)"), {"key": key}).scalar()
        if got != 1:
            raise TimeoutError(f"another server has been migrating the store for 60 s ({key})")
    try:
        yield
    finally:
        if dialect in ("mysql", "mariadb"):
            connection.execute(text("SELECT RELEASE_LOCK(:key)"), {"key": key})


@contextmanager
def _locked_transaction(engine: Engine, names: StoreNames) -> Iterator[Connection]:
    """A transaction under the migration lock, committed before the lock is let go."""
    if engine.dialect.name not in ("mysql", "mariadb"):
        with engine.begin() as connection, _lock(connection, names):
            yield connection
        return
    # MySQL's lock belongs to the session, not the transaction: take it first, and let it
    # go only after the commit, or the next server reads the revision before the last step.
    with engine.connect() as connection, _lock(connection, names):
        connection.commit()  # end the lock's own transaction: the next one reads afresh
        with connection.begin():
            yield connection
