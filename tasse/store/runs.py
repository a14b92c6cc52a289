"""The job store in any SQLAlchemy database: run history and API/seed-defined tasks.

SQLite by default, `memory://` for nothing kept, PostgreSQL (psycopg 3) and MariaDB/MySQL
(PyMySQL) tested; `crate://` is passed to its dialect untested. Tables are named from the
store's table name (`<table>` for defined tasks, `<table>_runs`, …; `StoreNames`) and
migrated with Alembic as the store opens.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Executable,
    Text,
    bindparam,
    cast,
    func,
    select,
    true,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from tasse.errors import StoreUnavailableError, StoreUnusableError
from tasse.models import Run, RunOutline, RunStatus, run_id_prefix
from tasse.store.database import DEFAULT_TIMEOUTS, Timeouts, first_line, make_engine, shown_address
from tasse.store.deadline import DeadlineError, await_with_deadline
from tasse.store.migrations import StoreNames, migrate
from tasse.store.tables import (
    MAX_NAME_LENGTH,
    MAX_SOURCE_LENGTH,
    RUN_COLUMNS,
    StoredTask,
    outline_of,
    row_of,
    run_of,
    stored_task,
    tables,
    upsert,
)
from tasse.store.windows import RunWindow, by_status, newest_of_each, window_clauses

#: runs deleted per transaction when history is pruned, so writers never wait long
PRUNE_BATCH = 1000
#: task names per query of `recent_outcomes`: SQLite takes at most 500 parts in a UNION
OUTCOME_BATCH = 500
_UNFINISHED = (RunStatus.queued.value, RunStatus.running.value)
T = TypeVar("T")


class RunStore:
    """Records runs, answers questions about their history, and keeps defined tasks."""

    def __init__(
        self,
        address: str,
        schema: str | None = None,
        table_name: str = "tasse",
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        node: str | None = None,
        node_address: str | None = None,
    ):
        self.names = StoreNames(table_name, schema)
        #: the cluster node this server is: stamped on every run it writes (None: no cluster)
        self.node = node
        #: where the node's API answers, for its heartbeat row (`store/nodes.py`)
        self.node_address = node_address
        self.address = address
        self.timeouts = timeouts
        self.engine = make_engine(address, timeouts)
        if self.names.schema and self.engine.dialect.name == "sqlite":
            raise ValueError(
                f"store schema name {self.names.schema!r} cannot be used with SQLite, which has no"
                " schemas: leave it unset (a store table name keeps stores apart)"
            )
        self._runs, self._tasks = tables(self.names)
        # Built once: compiling a statement per call costs more than SQLite takes to run it.
        self._insert_run = self._runs.insert()
        self._update_run = (
            self._runs.update()
            .where(self._runs.c.id == bindparam("run_id"))
            .values({name: bindparam(name) for name in RUN_COLUMNS if name != "id"})
        )
        self._put_runs = upsert(self._runs, "id", self.engine.dialect.name)
        self._get_run = select(self._runs).where(self._runs.c.id == bindparam("run_id"))
        self._get_task = select(self._tasks).where(self._tasks.c.name == bindparam("task"))
        self._newest: dict[int, Executable] = {}
        self._last_successes = (
            select(self._runs.c.task, func.max(self._runs.c.finished_at))
            .where(self._runs.c.status == RunStatus.succeeded.value)
            .group_by(self._runs.c.task)
        )
        tasks = self._tasks.c
        self._all_tasks = select(
            tasks.name,
            tasks.source,
            cast(tasks.definition, Text),
            tasks.created_at,
            tasks.updated_at,
        )
        try:
            self.migrate()
        except BaseException:
            self.engine.dispose()
            raise

    def migrate(self) -> None:
        """Create the schema and tables, or bring them to the newest revision (at start)."""
        migrate(self.engine, self.names)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    async def off_loop(
        self, function: Callable[[], T], what: str = "a store query", seconds: float | None = None
    ) -> T:
        """Run `function` (calls of this store) off the event loop, within the timeouts.

        Raises StoreUnavailableError, naming the store without its password, when the
        store fails or does not answer within `seconds` (default: its own timeouts).
        """
        if seconds is None:
            seconds = self.timeouts.connect + self.timeouts.statement
        try:
            return await await_with_deadline(function, seconds, what)
        except (SQLAlchemyError, DeadlineError, OSError) as error:
            raise StoreUnavailableError(self.shown_address, first_line(error)) from None

    def add(self, *runs: Run) -> None:
        """Record new runs, in one transaction (a restart may record a hundred missed fires)."""
        if runs:
            with self.engine.begin() as connection:
                connection.execute(self._insert_run, [self._row_of(run) for run in runs])

    def update(self, run: Run) -> None:
        """Record a run's new status and times."""
        values = row_of(run)
        values["run_id"] = values.pop("id")
        with self.engine.begin() as connection:
            connection.execute(self._update_run, values)

    def put(self, runs: Sequence[Run]) -> None:
        """Write runs as they are now, new or known, in one transaction.

        Idempotent: writing the same runs again (a retry after a timeout whose first
        attempt did land) changes nothing.
        """
        if not runs:
            return
        rows = [self._row_of(run) for run in runs]
        with self.engine.begin() as connection:
            if self._put_runs is not None:
                connection.execute(self._put_runs, rows)
                return
            for row in rows:  # a dialect without an upsert: update, else insert
                changed = connection.execute(self._update_run, {**row, "run_id": row["id"]})
                if changed.rowcount == 0:
                    connection.execute(self._insert_run, row)

    def _row_of(self, run: Run) -> dict[str, Any]:
        return {**row_of(run), "node": self.node}

    @property
    def shown_address(self) -> str:
        """The store's address as messages may show it (no password)."""
        return shown_address(self.address)

    def get(self, run_id: str) -> Run | None:
        """One run by id."""
        with self.engine.connect() as connection:
            row = connection.execute(self._get_run, {"run_id": run_id}).first()
        return run_of(row._mapping) if row else None

    def node_of(self, run_id: str) -> tuple[RunStatus, str | None] | None:
        """A run's status and the cluster node that recorded it (None: no such run)."""
        runs = self._runs
        query = select(runs.c.status, runs.c.node).where(runs.c.id == run_id)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else (RunStatus(row.status), row.node)

    def for_task(
        self, task: str, limit: int = 100, status: str | None = None, before: str | None = None
    ) -> list[Run]:
        """The task's runs, newest first (run ids sort by creation time), older than `before`."""
        runs = self._runs
        query = select(runs).where(runs.c.task == task)
        if status:
            query = query.where(runs.c.status == status)
        if before:
            query = query.where(runs.c.id < before)
        query = query.order_by(runs.c.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [run_of(row._mapping) for row in connection.execute(query)]

    def in_window(self, window: RunWindow, now: datetime) -> list[Run]:
        """Runs of any task the window holds (`store/windows.py`), newest first, up to its limit."""
        runs = self._runs
        query = select(runs).where(*window_clauses(runs, window, now))
        query = query.order_by(runs.c.id.desc()).limit(window.limit)
        with self.engine.connect() as connection:
            return [run_of(row._mapping) for row in connection.execute(query)]

    def outlines_in_window(self, window: RunWindow, now: datetime) -> list[RunOutline]:
        """`in_window` as outlines: only the columns charts draw, at a third of the cost."""
        runs = self._runs
        query = select(*(runs.c[name] for name in RunOutline._fields))
        query = query.where(*window_clauses(runs, window, now))
        query = query.order_by(runs.c.id.desc()).limit(window.limit)
        with self.engine.connect() as connection:
            return [outline_of(row) for row in connection.execute(query)]

    def count_by_status(self, since: datetime, now: datetime) -> dict[str, int]:
        """How many runs overlap the time from `since` to `now`, by status, in one query."""
        query = by_status(self._runs, since, now)
        with self.engine.connect() as connection:
            return {row[0]: row[1] for row in connection.execute(query)}

    def recent_outcomes(self, names: Sequence[str], count: int = 20) -> dict[str, list[Run]]:
        """Each named task's newest `count` runs, newest first ([] for none): one query a page."""
        found: dict[str, list[Run]] = {name: [] for name in names}
        unique = list(found)
        if count < 1:
            return found
        with self.engine.connect() as connection:
            for first in range(0, len(unique), OUTCOME_BATCH):
                batch = unique[first : first + OUTCOME_BATCH]
                values: dict[str, object] = {f"task_{i}": name for i, name in enumerate(batch)}
                query = self._newest_of_each(len(batch))
                for row in connection.execute(query, {**values, "count": count}):
                    found[row.task].append(run_of(row._mapping))
        for runs in found.values():
            runs.sort(key=attrgetter("id"), reverse=True)
        return found

    def _newest_of_each(self, size: int) -> Executable:
        # Built once per size: building fifty SELECTs costs more than SQLite takes to run them.
        if size not in self._newest:
            self._newest[size] = newest_of_each(self._runs, size)
        return self._newest[size]

    def latest_by_task(self) -> dict[str, Run]:
        """Each task's newest run, in one query."""
        runs = self._runs
        latest = (
            select(runs.c.task, func.max(runs.c.id).label("id")).group_by(runs.c.task).subquery()
        )
        query = select(runs).join(latest, runs.c.id == latest.c.id)
        with self.engine.connect() as connection:
            return {row.task: run_of(row._mapping) for row in connection.execute(query)}

    def last_successes(self) -> dict[str, datetime]:
        """When each task's newest success finished, in one query (for /metrics)."""
        with self.engine.connect() as connection:
            return {row[0]: row[1] for row in connection.execute(self._last_successes)}

    def interrupt_unfinished(self, now: datetime) -> list[str]:
        """Mark runs left queued or running by a previous server process as interrupted.

        A cluster node takes only its own: the others' runs are alive on their nodes.
        """
        runs = self._runs
        unfinished: ColumnElement[bool] = runs.c.status.in_(_UNFINISHED)
        if self.node is not None:
            unfinished = unfinished & (runs.c.node == self.node)
        with self.engine.begin() as connection:
            ids = list(connection.execute(select(runs.c.id).where(unfinished)).scalars())
            connection.execute(
                runs.update()
                .where(unfinished)
                .values(
                    status=RunStatus.interrupted.value,
                    finished_at=now,
                    error="the server stopped while this run was unfinished",
                )
            )
        return ids

    def tasks_with_runs(self) -> list[str]:
        """Every task name the history holds runs of, tasks since deleted included."""
        with self.engine.connect() as connection:
            names = connection.execute(select(self._runs.c.task).distinct()).scalars()
            return sorted(names)  # by code point, whatever the database's collation

    def prune_runs(
        self,
        task: str,
        older_than: datetime | None,
        keep: int | None,
        *,
        spare_newest: bool = False,
        limit: int = PRUNE_BATCH,
    ) -> list[str]:
        """Delete up to `limit` of the task's finished runs made before `older_than` or
        beyond its newest `keep` runs (None: no such limit); the deleted ids, oldest first.

        Fewer than `limit` back means nothing more is due. With `spare_newest` the age
        limit never takes the task's newest run, so a monthly task still shows its last.
        """
        runs = self._runs
        with self.engine.begin() as connection:
            beyond = self._beyond_limits(connection, task, older_than, keep, spare_newest)
            if beyond is None:
                return []
            due = (runs.c.task == task, runs.c.status.notin_(_UNFINISHED), beyond)
            query = select(runs.c.id).where(*due).order_by(runs.c.id).limit(limit)
            ids = list(connection.execute(query).scalars())
            if ids:
                connection.execute(runs.delete().where(*due, runs.c.id.in_(ids)))
        return ids

    def _beyond_limits(
        self,
        connection: Connection,
        task: str,
        older_than: datetime | None,
        keep: int | None,
        spare_newest: bool,
    ) -> ColumnElement[bool] | None:
        # Run ids start with their creation time in UTC (`new_run_id`), so both limits are
        # an id the pruned runs are below, and pruning is one range scan of the (task, id)
        # index. `finished_at` has no index, and is the recording time for a missed fire.
        by_age = None if older_than is None else run_id_prefix(older_than)
        if by_age is not None and spare_newest:
            newest = self._nth_newest(connection, task, 1)
            by_age = None if newest is None else min(by_age, newest)
        if keep == 0:
            return true()
        by_count = None if keep is None else self._nth_newest(connection, task, keep)
        bounds = [bound for bound in (by_age, by_count) if bound is not None]
        # A run beyond either limit goes: below the higher bound (ids have one fixed format,
        # so Python's order and the database's collation agree on them).
        return self._runs.c.id < max(bounds) if bounds else None

    def _nth_newest(self, connection: Connection, task: str, n: int) -> str | None:
        runs = self._runs
        query = select(runs.c.id).where(runs.c.task == task).order_by(runs.c.id.desc())
        found: str | None = connection.execute(query.offset(n - 1).limit(1)).scalar()
        return found

    def tasks(self) -> list[StoredTask]:
        """Every stored task, ordered by name (code points, the same on every backend)."""
        # 10,000 definitions load in half the time as one JSON array parsed at once, with
        # the collector paused: it would otherwise sweep the heap over and over as they pile up.
        with _collector_paused(), self.engine.connect() as connection:
            rows = connection.execute(self._all_tasks).all()
            definitions = json.loads("[" + ",".join([row[2] for row in rows]) + "]")
            stored = [
                StoredTask(row[0], row[1], definition, row[3], row[4])
                for row, definition in zip(rows, definitions, strict=True)
            ]
        stored.sort(key=attrgetter("name"))
        return stored

    def get_task(self, name: str) -> StoredTask | None:
        """One stored task by name."""
        with self.engine.connect() as connection:
            row = connection.execute(self._get_task, {"task": name}).first()
        return stored_task(row) if row else None

    def save_task(self, name: str, source: str, definition: dict[str, Any]) -> StoredTask:
        """Insert a task or replace its source and definition, keeping its created_at."""
        _check_length("task name", name, MAX_NAME_LENGTH)
        _check_length("task source", source, MAX_SOURCE_LENGTH)
        try:
            return self._save_task(name, source, definition)
        except IntegrityError:
            # Another process inserted the same name between our update and insert.
            return self._save_task(name, source, definition)

    def _save_task(self, name: str, source: str, definition: dict[str, Any]) -> StoredTask:
        tasks, now = self._tasks, datetime.now(UTC)
        values = {"source": source, "definition": definition, "updated_at": now}
        with self.engine.begin() as connection:
            changed = connection.execute(tasks.update().where(tasks.c.name == name), values)
            if not changed.rowcount:
                connection.execute(tasks.insert(), {**values, "name": name, "created_at": now})
            row = connection.execute(self._get_task, {"task": name}).one()
        return stored_task(row)

    def delete_task(self, name: str) -> bool:
        """Remove a stored task; True if it was there."""
        with self.engine.begin() as connection:
            result = connection.execute(self._tasks.delete().where(self._tasks.c.name == name))
        return bool(result.rowcount)

    def delete_tasks(self, sources: Collection[str]) -> int:
        """Remove every stored task from these sources; how many were removed."""
        if not sources:
            return 0
        tasks = self._tasks
        with self.engine.begin() as connection:
            result = connection.execute(tasks.delete().where(tasks.c.source.in_(list(sources))))
        return result.rowcount


def check_store(address: str, schema: str | None = None, table_name: str = "tasse") -> None:
    """Open and migrate the store once; StoreUnusableError with one line if that fails."""
    try:
        RunStore(address, schema, table_name).close()
    except (SQLAlchemyError, ValueError, OSError) as error:
        raise StoreUnusableError(shown_address(address), first_line(error)) from None


@contextmanager
def _collector_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _check_length(what: str, value: str, limit: int) -> None:
    if not 0 < len(value) <= limit:
        raise ValueError(f"{what} {value!r} must be 1 to {limit} characters long")
