"""The servers using a store, each with its heartbeat: the store's cheap write probe.

Each server writes its row every few seconds (`store/writer.py`), which proves the store
takes writes, not only reads; the cluster mode will read the same rows to see its peers.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime

from sqlalchemy import Column, Integer, MetaData, String, Table

from tasse import __version__
from tasse.store.database import UTCDateTime
from tasse.store.runs import RunStore
from tasse.store.tables import upsert


def node_name() -> str:
    """This server's name in the store: its host name."""
    return socket.gethostname()[:128]


class Nodes:
    """Writes this server's heartbeat row in the nodes table."""

    def __init__(self, store: RunStore, name: str | None = None):
        names = store.names
        self.name = name or node_name()
        self._engine = store.engine
        self._table = Table(
            names.nodes,
            MetaData(schema=names.schema),
            Column("name", String(128), primary_key=True),
            Column("pid", Integer, nullable=False),
            Column("version", String(32), nullable=False),
            Column("started_at", UTCDateTime, nullable=False),
            Column("heartbeat_at", UTCDateTime, nullable=False),
        )
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
        }
        with self._engine.begin() as connection:
            if self._put is not None:
                connection.execute(self._put, row)
                return
            table = self._table
            changed = connection.execute(table.update().where(table.c.name == self.name), row)
            if changed.rowcount == 0:
                connection.execute(table.insert(), row)
