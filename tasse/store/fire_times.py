"""Each schedule's next fire time, kept in the job store: a restart knows what it missed.

A row is `<task>#<index>`, a fingerprint of the schedule it was computed for, and the next
fire time. It is written before a fire is handed on (so a crash cannot make a fire run
twice) and for every schedule when the server stops cleanly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Protocol

from sqlalchemy import Column, Connection, MetaData, String, Table, delete, select

from tasse.store.database import UTCDateTime
from tasse.store.runs import RunStore

#: (fingerprint of the schedule, its next fire time)
FireTime = tuple[str, datetime | None]
#: rows per DELETE … IN (…), well under every database's limit on parameters
_CHUNK = 500


class FireTimeStore(Protocol):
    """Where the scheduler keeps next fire times: the table, or the writer in front of it."""

    def load(self) -> dict[str, FireTime]:
        """Every stored fire time, by job id."""

    def save(self, times: Mapping[str, FireTime]) -> None:
        """Replace these jobs' fire times."""

    def forget(self, job_ids: Iterable[str]) -> None:
        """Drop these jobs' rows."""


class FireTimes:
    """Reads and writes the fire-times table of a job store."""

    def __init__(self, store: RunStore):
        names = store.names
        self._engine = store.engine
        self._table = Table(
            names.fire_times,
            MetaData(schema=names.schema),
            Column("job_id", String(80), primary_key=True),
            Column("fingerprint", String(64), nullable=False),
            Column("next_fire_at", UTCDateTime),
        )

    def load(self) -> dict[str, FireTime]:
        """Every stored fire time, by job id."""
        with self._engine.connect() as connection:
            rows = connection.execute(select(self._table)).all()
        return {row.job_id: (row.fingerprint, row.next_fire_at) for row in rows}

    def save(self, times: Mapping[str, FireTime]) -> None:
        """Write (replace) these jobs' fire times in one transaction."""
        if not times:
            return
        with self._engine.begin() as connection:
            self._delete(connection, times.keys())
            connection.execute(
                self._table.insert(),
                [
                    {"job_id": job_id, "fingerprint": print_, "next_fire_at": at}
                    for job_id, (print_, at) in times.items()
                ],
            )

    def forget(self, job_ids: Iterable[str]) -> None:
        """Drop these jobs' rows (their task is gone)."""
        ids = list(job_ids)
        if ids:
            with self._engine.begin() as connection:
                self._delete(connection, ids)

    def _delete(self, connection: Connection, job_ids: Iterable[str]) -> None:
        ids = list(job_ids)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            connection.execute(delete(self._table).where(self._table.c.job_id.in_(chunk)))
