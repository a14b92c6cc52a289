"""The servers using a store, each with its heartbeat: the store's cheap write probe, and
the cluster's list of its nodes.

Each server writes its row every few seconds (`store/writer.py`), which proves the store
takes writes, not only reads; cluster nodes read the same rows to see their peers (`GET
/nodes`), and a node whose heartbeat stopped is taken for dead (`store/claims.py`).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.exc import SQLAlchemyError

from tasse import __version__
from tasse.errors import StoreUnavailableError
from tasse.models import RunStatus
from tasse.store.database import UTCDateTime, first_line
from tasse.store.migrations import StoreNames
from tasse.store.runs import RunStore
from tasse.store.tables import tables, upsert

#: what a `tasse serve` node does: schedules (when it holds the lease) and answers the API
SCHEDULER = "scheduler"
#: what a `tasse worker` node does: runs what the scheduler queued, nothing else
WORKER = "worker"


def node_name() -> str:
    """This server's name in the store: its host name."""
    return socket.gethostname()[:128]


@dataclass(frozen=True)
class NodeRecord:
    """One server as the nodes table has it."""

    name: str
    role: str
    version: str
    pid: int
    address: str | None
    started_at: datetime
    heartbeat_at: datetime


def nodes_table(names: StoreNames) -> Table:
    """The nodes table as reading and writing see it."""
    return Table(
        names.nodes,
        MetaData(schema=names.schema),
        Column("name", String(128), primary_key=True),
        Column("pid", Integer, nullable=False),
        Column("version", String(32), nullable=False),
        Column("started_at", UTCDateTime, nullable=False),
        Column("heartbeat_at", UTCDateTime, nullable=False),
        Column("role", String(16)),
        Column("address", String(255)),
    )


class Nodes:
    """Writes this server's heartbeat row in the nodes table, and reads every node's."""

    def __init__(
        self,
        store: RunStore,
        name: str | None = None,
        role: str = SCHEDULER,
        address: str | None = None,
    ):
        self.name = name or store.node or node_name()
        self.role = role
        #: where this node's API answers (shown to operators; None: not said)
        self.address = address or store.node_address
        self._store = store
        self._engine = store.engine
        self._names = store.names
        self._table = nodes_table(store.names)
        self._put = upsert(self._table, "name", self._engine.dialect.name)
        self._started_at = datetime.now(UTC)

    def heartbeat(self) -> None:
        """Write this server's row with the time now (one small transaction)."""
        row = {
            "name": self.name,
            "pid": os.getpid(),
            "version": __version__,
            "started_at": self._started_at,
            "heartbeat_at": datetime.now(UTC),
            "role": self.role,
            "address": self.address,
        }
        with self._engine.begin() as connection:
            if self._put is not None:
                connection.execute(self._put, row)
                return
            table = self._table
            changed = connection.execute(table.update().where(table.c.name == self.name), row)
            if changed.rowcount == 0:
                connection.execute(table.insert(), row)

    def running_by_node(self) -> dict[str, int]:
        """How many runs each node has running now, by the runs table."""
        runs = tables(self._names)[0]
        query = (
            select(runs.c.node, func.count())
            .where(runs.c.status == RunStatus.running.value, runs.c.node.is_not(None))
            .group_by(runs.c.node)
        )
        with self._engine.connect() as connection:
            return {node: int(count) for node, count in connection.execute(query)}

    def log_home(self, run_id: str) -> tuple[str, str | None] | None:
        """The other node whose data folder has this run's log, with its API address
        (None: the run is this node's, or not in the store); StoreUnavailableError when
        the store fails."""
        try:
            found = self._store.node_of(run_id)
            if found is None or found[1] is None or found[1] == self.name:
                return None
            return found[1], self.address_of(found[1])
        except SQLAlchemyError as error:
            raise StoreUnavailableError(self._store.shown_address, first_line(error)) from None

    def address_of(self, name: str) -> str | None:
        """Where node `name`'s API answers, as it wrote it (None: unknown)."""
        table = self._table
        query = select(table.c.address).where(table.c.name == name)
        with self._engine.connect() as connection:
            found: str | None = connection.execute(query).scalar()
        return found

    def all(self) -> list[NodeRecord]:
        """Every node that has written a heartbeat, by name."""
        table = self._table
        with self._engine.connect() as connection:
            rows = connection.execute(select(table).order_by(table.c.name)).all()
        return [
            NodeRecord(
                name=row.name,
                role=row.role or SCHEDULER,
                version=row.version,
                pid=row.pid,
                address=row.address,
                started_at=row.started_at,
                heartbeat_at=row.heartbeat_at,
            )
            for row in rows
        ]
