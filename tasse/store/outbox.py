"""The notifications outbox, kept in the job store: one row per message to one target.

A row is written with the record that caused it (a run's outcome, in the same writer
operation), then again each time its delivery is tried, and a last time when it is sent or
given up. Rows only move forward: a row that is final (sent, given up, folded into a digest)
is never made pending again, so a journal replayed over rows written since changes nothing,
and a message sent once is not sent twice because an older state of its row came back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    select,
    update,
)

from tasse.store.database import UTCDateTime
from tasse.store.runs import RunStore

#: rows per SELECT … IN (…), well under every database's limit on parameters
_CHUNK = 500


class NoticeStatus(StrEnum):
    """Where a notification stands; the last three are final."""

    #: waiting for its (next) delivery attempt
    pending = "pending"
    #: held back by the rate limit: it goes out in the next digest
    held = "held"
    #: the target took it
    sent = "sent"
    #: given up after the last attempt (or its target is no longer configured)
    failed = "failed"
    #: sent as a part of a digest (the digest is a row of its own)
    digested = "digested"

    @property
    def is_final(self) -> bool:
        """True once the row will not change any more."""
        return self in (NoticeStatus.sent, NoticeStatus.failed, NoticeStatus.digested)


@dataclass(frozen=True)
class Notice:
    """One message to one target, and how its delivery stands."""

    #: made from its cause and target: the same cause gives the same id
    id: str
    task: str
    #: what it tells of, in order (`failed`, `retries_exhausted`, …)
    events: tuple[str, ...]
    #: the run it is about, if one
    run_id: str | None
    #: the target's key (a digest of its URL: never the URL, which may hold a secret)
    target: str
    #: the target as it may be shown (secrets masked)
    shown_target: str
    created_at: datetime
    status: NoticeStatus = NoticeStatus.pending
    attempts: int = 0
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    #: why the last attempt failed (or, for a digested row, the digest's id)
    error: str | None = None
    #: what the message says, as JSON (`notify/message.py`)
    payload: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def but(self, **changes: Any) -> Notice:
        """This row with some fields changed."""
        return replace(self, **changes)


def newest(old: Notice | None, new: Notice) -> Notice:
    """Of two states of one row, the one to keep: a final state is never undone."""
    if old is None:
        return new
    if old.status.is_final and not new.status.is_final:
        return old
    return new


class OutboxTable:
    """Reads and writes the outbox table of a job store."""

    def __init__(self, store: RunStore):
        names = store.names
        self._engine = store.engine
        self._table = Table(
            names.outbox,
            MetaData(schema=names.schema),
            Column("id", String(160), primary_key=True),
            Column("task", String(64), nullable=False),
            Column("events", String(200), nullable=False),
            Column("run_id", String(64)),
            Column("target", String(32), nullable=False),
            Column("shown_target", Text, nullable=False),
            Column("status", String(16), nullable=False),
            Column("attempts", Integer, nullable=False),
            Column("created_at", UTCDateTime, nullable=False),
            Column("next_attempt_at", UTCDateTime),
            Column("sent_at", UTCDateTime),
            Column("error", Text),
            Column("payload", JSON, nullable=False),
        )
        table = self._table
        self._update = (
            update(table)
            .where(table.c.id == bindparam("key"))
            .values({c.name: bindparam(c.name) for c in table.columns if c.name != "id"})
        )

    def save(self, notices: Sequence[Notice]) -> None:
        """Write these rows' states in one transaction; a final row stays as it is."""
        if not notices:
            return
        table = self._table
        by_id = {notice.id: notice for notice in notices}
        with self._engine.begin() as connection:
            final: set[str] = set()
            known: set[str] = set()
            ids = list(by_id)
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                query = select(table.c.id, table.c.status).where(table.c.id.in_(chunk))
                for row in connection.execute(query):
                    known.add(row.id)
                    if NoticeStatus(row.status).is_final:
                        final.add(row.id)
            new = [_row(n) for id_, n in by_id.items() if id_ not in known]
            if new:
                connection.execute(table.insert(), new)
            changed = [
                _row(n) | {"key": id_}
                for id_, n in by_id.items()
                if id_ in known and id_ not in final
            ]
            if changed:  # one statement, many parameter sets: a burst is one round trip
                connection.execute(self._update, changed)

    def unfinished(self) -> list[Notice]:
        """Every row not final yet (pending or held), oldest first: what a restart resumes."""
        table = self._table
        query = select(table).where(
            table.c.status.in_((NoticeStatus.pending.value, NoticeStatus.held.value))
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query.order_by(table.c.created_at)).all()
        return [_notice(row._mapping) for row in rows]

    def page(
        self, task: str | None, status: str | None, before: datetime | None, limit: int
    ) -> list[Notice]:
        """Rows newest first, of one task and status if given, created before `before`."""
        table = self._table
        query = select(table)
        if task:
            query = query.where(table.c.task == task)
        if status:
            query = query.where(table.c.status == status)
        if before:
            query = query.where(table.c.created_at < before)
        query = query.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit)
        with self._engine.connect() as connection:
            return [_notice(row._mapping) for row in connection.execute(query)]

    def latest_of(self, task: str, event: str) -> datetime | None:
        """When the task's newest row telling of `event` was made (the dead-man switch's)."""
        table = self._table
        query = (
            select(table.c.created_at)
            .where(table.c.task == task, table.c.events == event)
            .order_by(table.c.created_at.desc())
            .limit(1)
        )
        with self._engine.connect() as connection:
            found: datetime | None = connection.execute(query).scalar()
        return found


def _row(notice: Notice) -> dict[str, Any]:
    return {
        "id": notice.id,
        "task": notice.task,
        "events": ",".join(notice.events),
        "run_id": notice.run_id,
        "target": notice.target,
        "shown_target": notice.shown_target,
        "status": notice.status.value,
        "attempts": notice.attempts,
        "created_at": notice.created_at,
        "next_attempt_at": notice.next_attempt_at,
        "sent_at": notice.sent_at,
        "error": notice.error,
        "payload": notice.payload,
    }


def _notice(mapping: Any) -> Notice:
    return Notice(
        id=mapping["id"],
        task=mapping["task"],
        events=tuple(mapping["events"].split(",")),
        run_id=mapping["run_id"],
        target=mapping["target"],
        shown_target=mapping["shown_target"],
        created_at=mapping["created_at"],
        status=NoticeStatus(mapping["status"]),
        attempts=mapping["attempts"],
        next_attempt_at=mapping["next_attempt_at"],
        sent_at=mapping["sent_at"],
        error=mapping["error"],
        payload=mapping["payload"] or {},
    )


def notice_entry(notice: Notice) -> dict[str, Any]:
    """A row as a journal line holds it (JSON)."""
    entry = _row(notice)
    for key in ("created_at", "next_attempt_at", "sent_at"):
        entry[key] = entry[key].isoformat() if entry[key] else None
    return entry


def notice_of_entry(entry: dict[str, Any]) -> Notice:
    """A row from its journal form (ValueError, KeyError or TypeError if it is not one)."""
    values = dict(entry)
    for key in ("created_at", "next_attempt_at", "sent_at"):
        values[key] = datetime.fromisoformat(values[key]) if values[key] else None
    return _notice(values)
