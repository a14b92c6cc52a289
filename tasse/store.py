"""Run history in any SQLAlchemy database: SQLite by default, `memory://` for nothing kept."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    TypeDecorator,
    bindparam,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.pool import StaticPool

from tasse.models import Run, RunStatus

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and gives them back aware (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC).replace(tzinfo=None) if value else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value else None


runs = Table(
    "tasse_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("task", String(64), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("exit_code", Integer),
    Column("scheduled_at", UTCDateTime),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("error", Text),
    Index("ix_tasse_runs_task_id", "task", "id"),
    Index("ix_tasse_runs_status", "status"),
)

_RUN_COLUMNS = tuple(runs.c.keys())
# Built once: compiling a statement per call costs more than SQLite takes to run it.
_INSERT = runs.insert()
_UPDATE = (
    runs.update()
    .where(runs.c.id == bindparam("run_id"))
    .values({name: bindparam(name) for name in _RUN_COLUMNS if name != "id"})
)
_GET = select(runs).where(runs.c.id == bindparam("run_id"))


def make_engine(address: str) -> Engine:
    """An engine for a store address; `memory://` is a private in-process SQLite database."""
    if address in ("memory://", "memory:"):
        return create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    url = make_url(address)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _tune_sqlite)
    return engine


def _tune_sqlite(connection: Any, _record: Any) -> None:
    # WAL lets the API read while a run is recorded; NORMAL syncs at checkpoints only,
    # which keeps a commit well under a millisecond and still survives a process crash.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class RunStore:
    """Records runs and answers questions about their history."""

    def __init__(self, address: str):
        self.engine = make_engine(address)
        metadata.create_all(self.engine)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def add(self, run: Run) -> None:
        """Record a new run."""
        with self.engine.begin() as connection:
            connection.execute(_INSERT, _row(run))

    def update(self, run: Run) -> None:
        """Record a run's new status and times."""
        values = _row(run)
        values["run_id"] = values.pop("id")
        with self.engine.begin() as connection:
            connection.execute(_UPDATE, values)

    def get(self, run_id: str) -> Run | None:
        """One run by id."""
        with self.engine.connect() as connection:
            row = connection.execute(_GET, {"run_id": run_id}).first()
        return _run(row._mapping) if row else None

    def for_task(self, task: str, limit: int = 100, status: str | None = None) -> list[Run]:
        """The task's runs, newest first (run ids sort by creation time)."""
        query = select(runs).where(runs.c.task == task)
        if status:
            query = query.where(runs.c.status == status)
        query = query.order_by(runs.c.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [_run(row._mapping) for row in connection.execute(query)]

    def latest_by_task(self) -> dict[str, Run]:
        """Each task's newest run, in one query."""
        latest = (
            select(runs.c.task, func.max(runs.c.id).label("id")).group_by(runs.c.task).subquery()
        )
        query = select(runs).join(latest, runs.c.id == latest.c.id)
        with self.engine.connect() as connection:
            return {row.task: _run(row._mapping) for row in connection.execute(query)}

    def interrupt_unfinished(self, now: datetime) -> int:
        """Mark runs left queued or running by a previous server process as interrupted."""
        unfinished = runs.c.status.in_([RunStatus.queued.value, RunStatus.running.value])
        with self.engine.begin() as connection:
            result = connection.execute(
                runs.update()
                .where(unfinished)
                .values(
                    status=RunStatus.interrupted.value,
                    finished_at=now,
                    error="the server stopped while this run was unfinished",
                )
            )
        return result.rowcount


def _row(run: Run) -> dict[str, Any]:
    values = run.model_dump()
    values["trigger"] = run.trigger.value
    values["status"] = run.status.value
    return values


def _run(mapping: Any) -> Run:
    return Run.model_validate({key: mapping[key] for key in _RUN_COLUMNS})
