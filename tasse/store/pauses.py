"""Paused tasks, kept in the job store: a pause survives restarts until the task is resumed.

A row is a task name, when it was paused and, optionally, why. The name alone is the key,
whatever defines the task, so a folder removed and added again is still paused. Written
through the writer (`store/writer.py`) like every record; read at start (and, in a
cluster, again whenever another node changed them: `cluster/shared_state.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, MetaData, String, Table, Text, delete, select

from tasse.store.database import UTCDateTime
from tasse.store.migrations import StoreNames
from tasse.store.runs import RunStore
from tasse.store.tables import MAX_NAME_LENGTH

#: rows per DELETE … IN (…), well under every database's limit on parameters
_CHUNK = 500


@dataclass(frozen=True)
class Pause:
    """A task's pause: since when, and why (if a reason was given)."""

    #: when it was paused (aware, UTC)
    paused_at: datetime
    reason: str | None = None


def pauses_table(names: StoreNames) -> Table:
    """The pauses table as reading and writing see it."""
    return Table(
        names.pauses,
        MetaData(schema=names.schema),
        Column("name", String(MAX_NAME_LENGTH), primary_key=True),
        Column("paused_at", UTCDateTime, nullable=False),
        Column("reason", Text),
    )


class PauseTable:
    """Reads and writes the pauses table of a job store."""

    def __init__(self, store: RunStore):
        self._engine = store.engine
        self._table = pauses_table(store.names)

    def load(self) -> dict[str, Pause]:
        """Every paused task, by name."""
        with self._engine.connect() as connection:
            rows = connection.execute(select(self._table)).all()
        return {row.name: Pause(row.paused_at, row.reason) for row in rows}

    def save(self, changes: Mapping[str, Pause | None]) -> None:
        """Pause (a Pause) or resume (None) these tasks, in one transaction; idempotent."""
        if not changes:
            return
        table, names = self._table, list(changes)
        paused = [
            {"name": name, "paused_at": pause.paused_at, "reason": pause.reason}
            for name, pause in changes.items()
            if pause is not None
        ]
        # Replaced, not upserted: the same statements on every backend, and a write
        # retried after a timeout whose first attempt landed leaves the same rows.
        with self._engine.begin() as connection:
            for start in range(0, len(names), _CHUNK):
                chunk = names[start : start + _CHUNK]
                connection.execute(delete(table).where(table.c.name.in_(chunk)))
            if paused:
                connection.execute(table.insert(), paused)
