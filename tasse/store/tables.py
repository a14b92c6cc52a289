"""The store's tables as reading and writing see them, and how rows become runs and tasks.

Only what queries need: the DDL lives in the migrations, which a test checks agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Executable, Integer, MetaData, Row, String, Table, Text
from sqlalchemy.dialects import mysql, postgresql, sqlite

from tasse.models import Run, RunOutline, RunStatus
from tasse.store.database import UTCDateTime
from tasse.store.migrations import StoreNames

#: longest task name and source the tasks table holds
MAX_NAME_LENGTH, MAX_SOURCE_LENGTH = 64, 16


@dataclass(frozen=True)
class StoredTask:
    """A task defined through the API or a seed file, as the store holds it."""

    name: str
    #: "api" or "seed"
    source: str
    #: the task's JSON definition
    definition: dict[str, Any]
    #: when it was first saved (aware, UTC); kept when it is saved again
    created_at: datetime
    #: when it was last saved (aware, UTC)
    updated_at: datetime


def tables(names: StoreNames) -> tuple[Table, Table]:
    """The runs and tasks tables of a store, as reading and writing see them."""
    # Only what reading and writing need: the DDL lives in the migrations.
    metadata = MetaData(schema=names.schema)
    runs = Table(
        names.runs,
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
        Column("attempt", Integer, nullable=False),
        Column("args", JSON),
        Column("params", JSON),
        # the cluster node that recorded it (null outside cluster mode); not part of a Run
        Column("node", String(128)),
    )
    tasks = Table(
        names.tasks,
        metadata,
        Column("name", String(MAX_NAME_LENGTH), primary_key=True),
        Column("source", String(MAX_SOURCE_LENGTH), nullable=False),
        Column("definition", JSON, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
    )
    return runs, tasks


#: the columns a Run is made of (`node` is the store's own, stamped by the writing node)
RUN_COLUMNS = tuple(column.key for column in tables(StoreNames())[0].c if column.key != "node")


def row_of(run: Run) -> dict[str, Any]:
    """A run as a row of the runs table."""
    values = run.model_dump()
    for key in _REQUEST:
        values[key] = values[key] or None  # most runs are given none: no JSON to store
    values["trigger"] = run.trigger.value
    values["status"] = run.status.value
    return values


def run_of(mapping: Any) -> Run:
    """A run from a row of the runs table."""
    # Null request columns: a run recorded before they existed, or one nobody gave any.
    return Run.model_validate(
        {
            key: mapping[key]
            for key in RUN_COLUMNS
            if mapping[key] is not None or key not in _REQUEST
        }
    )


_REQUEST = frozenset({"args", "params"})


def outline_of(row: Row[Any]) -> RunOutline:
    """A run's outline from a row of `RunOutline._fields`' columns, in that order."""
    id_, task, status, scheduled_at, started_at, finished_at, error = tuple(row)
    return RunOutline(id_, task, RunStatus(status), scheduled_at, started_at, finished_at, error)


def stored_task(row: Row[Any]) -> StoredTask:
    """A defined task from a row of the tasks table."""
    return StoredTask(row.name, row.source, row.definition, row.created_at, row.updated_at)


def upsert(table: Table, key: str, dialect: str) -> Executable | None:
    """INSERT … that updates the row with the same `key` instead, where the dialect can say so."""
    values = [column.name for column in table.columns if column.name != key]
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
        excluded = insert.excluded
        return insert.on_conflict_do_update(
            index_elements=[key], set_={name: excluded[name] for name in values}
        )
    if dialect in ("mysql", "mariadb"):
        mysql_insert = mysql.insert(table)
        return mysql_insert.on_duplicate_key_update(
            {name: mysql_insert.inserted[name] for name in values}
        )
    return None
