"""A cheap mark of what the nodes of a cluster share through the store besides runs: the
defined tasks and the pauses. A node reads it every second and reads the tables
themselves only when it changed (`cluster/shared_state.py`).

The mark of a table is its row count and the sum of its rows' timestamps (a task's
`updated_at`, a pause's `paused_at`): a row added, removed or written again changes it.
Computed by PostgreSQL (cluster mode's store) in one round trip, whatever the number of
rows: 10,000 definitions are not read each second to learn that nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, ScalarSelect, func, select

from tasse.store.pauses import pauses_table
from tasse.store.runs import RunStore
from tasse.store.tables import tables


@dataclass(frozen=True)
class Revision:
    """The marks of the defined tasks and of the pauses, as read together."""

    #: "<rows>/<sum of the timestamps>"
    tasks: str
    pauses: str


def _mark(stamp: Column[object]) -> tuple[ScalarSelect[int], ScalarSelect[object]]:
    count = select(func.count()).select_from(stamp.table).scalar_subquery()
    total = select(func.coalesce(func.sum(func.extract("epoch", stamp)), 0))
    return count, total.scalar_subquery()


class SharedRevisions:
    """Reads the marks of a store's tasks and pauses tables."""

    def __init__(self, store: RunStore):
        self._engine = store.engine
        tasks = tables(store.names)[1]
        pauses = pauses_table(store.names)
        self._query = select(*_mark(tasks.c.updated_at), *_mark(pauses.c.paused_at))

    def read(self) -> Revision:
        """The marks now (a store call: off the loop)."""
        with self._engine.connect() as connection:
            row = connection.execute(self._query).one()
        tasks, tasks_total, pauses, pauses_total = tuple(row)
        # The sums are exact (numeric) in PostgreSQL; their text compares exactly too.
        return Revision(f"{tasks}/{tasks_total}", f"{pauses}/{pauses_total}")
