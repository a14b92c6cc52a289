"""Commands one cluster node leaves in the store for another: a manual run for the
scheduler, a cancel for the node running the run.

A command is a row with a target (a node's name, or null for whichever holds the
scheduler lease); the target takes it with `FOR UPDATE SKIP LOCKED` (taken once, whoever
polls) and writes its answer into the same row, which the sender polls. A run request's
body carries its environment values (secrets, some of them): the answer clears it.
PostgreSQL only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    MetaData,
    String,
    Table,
    and_,
    delete,
    exists,
    null,
    or_,
    select,
    text,
    update,
)

from tasse.store.database import UTCDateTime
from tasse.store.leases import CLOCK, SCHEDULER_LEASE, Leases
from tasse.store.runs import RunStore

#: commands taken per poll
TAKEN_AT_ONCE = 20


@dataclass(frozen=True)
class Command:
    """A command as its target takes it."""

    id: int
    kind: str
    sender: str
    body: dict[str, Any]


class Commands:
    """Sends commands, takes those meant for this node, answers them, reads answers."""

    def __init__(self, store: RunStore, leases: Leases):
        names = store.names
        self._engine = store.engine
        self._leases = leases
        self.table = Table(
            names.commands,
            MetaData(schema=names.schema),
            Column("id", BigInteger, primary_key=True, autoincrement=True),
            Column("kind", String(16), nullable=False),
            Column("target", String(128)),
            Column("sender", String(128), nullable=False),
            Column("body", JSON, nullable=False),
            Column("created_at", UTCDateTime, nullable=False),
            Column("taken_by", String(128)),
            Column("answered_at", UTCDateTime),
            Column("answer", JSON),
        )

    def send(self, kind: str, target: str | None, sender: str, body: dict[str, Any]) -> int:
        """Leave a command for `target` (None: the scheduler lease's holder); its id."""
        table = self.table
        values = {
            "kind": kind,
            "target": target,
            "sender": sender,
            "body": body,
            "created_at": datetime.now(UTC),
        }
        with self._engine.begin() as connection:
            found = connection.execute(table.insert().values(values).returning(table.c.id))
            return int(found.scalar_one())

    def take(self, node: str) -> list[Command]:
        """The commands meant for this node, taken so no other node takes them too.

        Those for the scheduler only while this node holds its lease, by the database's clock.
        """
        table, lease = self.table, self._leases.table
        holds = exists().where(
            lease.c.name == SCHEDULER_LEASE,
            lease.c.holder == node,
            lease.c.expires_at > text(CLOCK),
        )
        mine = or_(table.c.target == node, and_(table.c.target.is_(None), holds))
        waiting = (
            select(table.c.id)
            .where(table.c.taken_by.is_(None), table.c.answered_at.is_(None), mine)
            .order_by(table.c.id)
            .limit(TAKEN_AT_ONCE)
            .with_for_update(skip_locked=True)
        )
        taking = (
            update(table)
            .where(table.c.id.in_(waiting.scalar_subquery()))
            .values(taken_by=node)
            .returning(table.c.id, table.c.kind, table.c.sender, table.c.body)
        )
        with self._engine.begin() as connection:
            rows = connection.execute(taking).all()
        return sorted(
            (Command(row.id, row.kind, row.sender, row.body) for row in rows), key=lambda c: c.id
        )

    def answer(self, command_id: int, answer: dict[str, Any]) -> None:
        """Write the answer (the body is cleared: it may carry secrets)."""
        table = self.table
        with self._engine.begin() as connection:
            connection.execute(
                update(table)
                .where(table.c.id == command_id)
                .values(answered_at=datetime.now(UTC), answer=answer, body={})
            )

    def answer_of(self, command_id: int) -> tuple[bool, dict[str, Any] | None]:
        """(taken, answer): whether the target has taken it, and its answer once given."""
        table = self.table
        query = select(table.c.taken_by, table.c.answer).where(table.c.id == command_id)
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return False, None
        return row.taken_by is not None, row.answer

    def withdraw(self, command_id: int) -> bool:
        """Take back a command nobody has taken yet; False if it was taken meanwhile."""
        table = self.table
        with self._engine.begin() as connection:
            result = connection.execute(
                update(table)
                .where(table.c.id == command_id, table.c.taken_by.is_(None))
                .values(taken_by=null(), answered_at=datetime.now(UTC), body={}, answer={})
            )
        return bool(result.rowcount)

    def prune(self, before: datetime) -> int:
        """Drop commands made before `before` (answered or given up long ago)."""
        table = self.table
        with self._engine.begin() as connection:
            result = connection.execute(delete(table).where(table.c.created_at < before))
        return result.rowcount
