"""What a node that died leaves behind in the store, found by the cluster's scheduler.

A node whose heartbeat (`store/nodes.py`) stopped is taken for dead. Its unfinished runs
are recorded `interrupted`, naming it; fires it claimed in its last moments with no record
yet (killed between the claim and its record's write) are given one, so no fire is left
without an outcome. PostgreSQL only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import String, text
from sqlalchemy.types import TypeEngine

from tasse.models import RunStatus
from tasse.store.claims import claims_table
from tasse.store.database import UTCDateTime
from tasse.store.leases import CLOCK
from tasse.store.nodes import WORKER
from tasse.store.runs import RunStore

#: a dead node's claims this long before its last heartbeat may lack a record; older ones
#: were written long ago (a record follows its claim within milliseconds)
CLAIM_WINDOW = timedelta(seconds=15)
#: claims older than this are never looked at again (history may have been pruned)
LOOK_BACK = timedelta(minutes=10)


@dataclass(frozen=True)
class OrphanFire:
    """A fire a dead node claimed and left without a record."""

    task: str
    scheduled_at: datetime
    node: str
    #: when it was claimed (the database's clock)
    claimed_at: datetime


_FIRE_COLUMNS: dict[str, TypeEngine[Any]] = {
    "task": String(),
    "scheduled_at": UTCDateTime(),
    "node": String(),
    "claimed_at": UTCDateTime(),
}
_CLOCK = text(f"SELECT {CLOCK}").columns(now=UTCDateTime())


class Orphans:
    """Finds and settles what dead nodes left unfinished."""

    def __init__(self, store: RunStore):
        names = store.names

        def where(table: str) -> str:
            return f"{names.schema}.{table}" if names.schema else table

        runs, nodes = where(names.runs), where(names.nodes)
        claims = where(claims_table(store).name)
        self._engine = store.engine
        self._fires = text(
            f"""
            SELECT c.task, c.scheduled_at, c.node, c.claimed_at FROM {claims} c
            JOIN {nodes} n ON n.name = c.node
            WHERE n.heartbeat_at < :dead_before AND c.node <> :me
              AND c.claimed_at > :look_back
              AND c.claimed_at > n.heartbeat_at - make_interval(secs => :window)
              AND NOT EXISTS (
                  SELECT 1 FROM {runs} r WHERE r.task = c.task AND r.scheduled_at = c.scheduled_at
              )
            ORDER BY c.scheduled_at
            """
        ).columns(**_FIRE_COLUMNS)
        # A node started again under its name has a fresh heartbeat at once: what its
        # earlier process claimed and left without a record is found by the node itself.
        self._own_fires = text(
            f"""
            SELECT c.task, c.scheduled_at, c.node, c.claimed_at FROM {claims} c
            WHERE c.node = :me AND c.claimed_at < :started AND c.claimed_at > :look_back
              AND NOT EXISTS (
                  SELECT 1 FROM {runs} r WHERE r.task = c.task AND r.scheduled_at = c.scheduled_at
              )
            ORDER BY c.scheduled_at
            """
        ).columns(**_FIRE_COLUMNS)
        self._interrupt = text(
            f"""
            UPDATE {runs} r SET status = :interrupted, finished_at = :now,
                error = 'node ' || r.node || ' stopped answering while this run was unfinished'
            FROM {nodes} n
            WHERE n.name = r.node AND r.node <> :me
              AND n.heartbeat_at < CASE WHEN n.role = :worker THEN :workers_dead_before
                                        ELSE :dead_before END
              AND r.status IN (:queued, :running)
            RETURNING r.id
            """
        ).columns(id=String())

    def unrecorded_fires(self, me: str, dead_before: datetime, now: datetime) -> list[OrphanFire]:
        """Fires claimed by nodes silent since `dead_before` that have no record."""
        values = {
            "me": me,
            "dead_before": _naive(dead_before),
            "look_back": _naive(now - LOOK_BACK),
            "window": CLAIM_WINDOW.total_seconds(),
        }
        with self._engine.connect() as connection:
            rows = connection.execute(self._fires, values).all()
        return [OrphanFire(*row) for row in rows]

    def clock(self) -> datetime:
        """The database's time now (aware, UTC): the clock claims are stamped with."""
        with self._engine.connect() as connection:
            now: datetime = connection.execute(_CLOCK).scalar_one()
        return now

    def own_unrecorded_fires(self, me: str, started: datetime) -> list[OrphanFire]:
        """Fires node `me` claimed before `started` (its process's start, by `clock`)
        that have no record: an earlier process of the same node left them."""
        values = {"me": me, "started": _naive(started), "look_back": _naive(started - LOOK_BACK)}
        with self._engine.connect() as connection:
            rows = connection.execute(self._own_fires, values).all()
        return [OrphanFire(*row) for row in rows]

    def interrupt_runs(
        self, me: str, dead_before: datetime, now: datetime, workers_dead_before: datetime
    ) -> list[str]:
        """Record the unfinished runs of nodes silent since `dead_before` (workers: since
        `workers_dead_before`) as interrupted."""
        values = {
            "me": me,
            "worker": WORKER,
            "dead_before": _naive(dead_before),
            "workers_dead_before": _naive(workers_dead_before),
            "now": _naive(now),
            "interrupted": RunStatus.interrupted.value,
            "queued": RunStatus.queued.value,
            "running": RunStatus.running.value,
        }
        with self._engine.begin() as connection:
            return list(connection.execute(self._interrupt, values).scalars())


def _naive(moment: datetime) -> datetime:
    # The store's timestamp columns hold UTC without a zone (`UTCDateTime`).
    return moment.astimezone(UTC).replace(tzinfo=None)
