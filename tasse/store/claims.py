"""Fire claims: one row per (task, nominal fire time), inserted before the fire becomes a
run or a ledger record; the node whose insert lands owns the fire.

The claim and the check of the claimer's lease are one transaction (`Leases.hold`, a share
lock on the lease row): a node whose lease was taken over while it was frozen or cut off
finds its token stale and claims nothing, and `ON CONFLICT DO NOTHING` on the key makes a
second claim of the same fire a no-op whoever sends it. A new scheduler carries on from
each task's last claim (`last_claimed`). PostgreSQL only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, MetaData, String, Table, text
from sqlalchemy.dialects.postgresql import insert

from tasse.store.database import UTCDateTime
from tasse.store.leases import SCHEDULER_LEASE, Leases
from tasse.store.runs import RunStore

#: a fire: the task's name and its nominal fire time (aware)
Fire = tuple[str, datetime]
#: task names per query of `last_claimed`
_BATCH = 1000
#: claims deleted per transaction when old ones are dropped
PRUNE_BATCH = 20_000


def claims_table(store: RunStore) -> Table:
    """The fire claims table as reading and writing see it."""
    names = store.names
    return Table(
        names.fire_claims,
        MetaData(schema=names.schema),
        Column("task", String(64), primary_key=True),
        Column("scheduled_at", UTCDateTime, primary_key=True),
        Column("node", String(128), nullable=False),
        Column("token", BigInteger, nullable=False),
        Column("claimed_at", UTCDateTime, nullable=False),
    )


class FireClaims:
    """Claims fires for the scheduler lease's holder, and says where claiming left off."""

    def __init__(self, store: RunStore, leases: Leases):
        self._engine = store.engine
        self._leases = leases
        self.table = claims_table(store)
        table = self.table
        self._insert = (
            insert(table)
            .on_conflict_do_nothing(index_elements=["task", "scheduled_at"])
            .returning(table.c.task, table.c.scheduled_at)
        )
        where = f"{store.names.schema}.{table.name}" if store.names.schema else table.name
        # max() per task through the key's index: PostgreSQL reads one row from its end,
        # where a GROUP BY would read every claim of two days.
        self._last = text(
            f"""
            SELECT t.task, (SELECT max(c.scheduled_at) FROM {where} c WHERE c.task = t.task) AS at
            FROM unnest(CAST(:tasks AS text[])) AS t(task)
            """
        ).columns(task=String(), at=UTCDateTime())
        self._prune = text(
            f"""
            DELETE FROM {where} WHERE ctid IN (
                SELECT ctid FROM {where} WHERE scheduled_at < :before LIMIT :limit
            )
            """
        )

    def claim(self, node: str, token: int, fires: Sequence[Fire]) -> set[Fire]:
        """The fires this node won: none unless it holds the scheduler lease with `token`."""
        if not fires:
            return set()
        now = datetime.now(UTC)
        rows = [
            {"task": task, "scheduled_at": at, "node": node, "token": token, "claimed_at": now}
            for task, at in dict.fromkeys(fires)  # a fire asked for twice is one row
        ]
        with self._engine.begin() as connection:
            if not self._leases.hold(connection, SCHEDULER_LEASE, node, token):
                return set()
            won = connection.execute(self._insert, rows).all()
        return {(row.task, row.scheduled_at) for row in won}

    def last_claimed(self, tasks: Sequence[str]) -> dict[str, datetime]:
        """Each task's newest claimed fire time (tasks never claimed are left out)."""
        found: dict[str, datetime] = {}
        with self._engine.connect() as connection:
            for first in range(0, len(tasks), _BATCH):
                batch = list(tasks[first : first + _BATCH])
                rows = connection.execute(self._last, {"tasks": batch})
                found.update({row.task: row.at for row in rows if row.at is not None})
        return found

    def prune(self, before: datetime, limit: int = PRUNE_BATCH) -> int:
        """Drop up to `limit` claims of fires older than `before` (long recorded); how many."""
        naive = before.astimezone(UTC).replace(tzinfo=None)
        with self._engine.begin() as connection:
            result = connection.execute(self._prune, {"before": naive, "limit": limit})
        return result.rowcount
