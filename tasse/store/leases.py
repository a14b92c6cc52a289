"""Leases with fencing tokens, kept in the store: who may act for the whole cluster now.

A lease is a row — name, holder, token, expires_at — taken or renewed by one conditional
upsert, timed by the database's clock (the nodes' clocks may disagree; the database is the
one judge). A new holder gets a token one higher than the last; a holder that renews in
time keeps its token. Whatever a holder does for the cluster (claiming a fire,
`store/claims.py`) it does in a transaction that checks its token is still current, under
a share lock on the lease row, so a node that was frozen past its lease and wakes up
cannot act on it: its token is stale. PostgreSQL only (cluster mode requires it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, Column, Connection, MetaData, String, Table, select, text

from tasse.store.database import UTCDateTime
from tasse.store.runs import RunStore

#: the lease whose holder fires schedules and starts runs
SCHEDULER_LEASE = "scheduler"
#: a transaction touching the lease row is ended by the server if its client goes quiet
#: inside it for this long (frozen, cut off): its lock must not keep a new holder waiting
_QUIET_LIMIT = text("SET LOCAL idle_in_transaction_session_timeout = '2s'")
#: and a bid waits this long at most for the row's lock
_LOCK_WAIT = text("SET LOCAL lock_timeout = '1s'")
#: the database's time now (in UTC, as the store's zone-less timestamps hold it), at this
#: very moment rather than at the transaction's start
CLOCK = "(clock_timestamp() AT TIME ZONE 'UTC')"


@dataclass(frozen=True)
class Lease:
    """A lease as the store has it now."""

    name: str
    holder: str
    token: int
    acquired_at: datetime
    expires_at: datetime
    #: whether it has not expired, by the database's clock
    valid: bool


class Leases:
    """Takes, renews, releases and reads leases."""

    def __init__(self, store: RunStore):
        names = store.names
        self._engine = store.engine
        self.table = Table(
            names.leases,
            MetaData(schema=names.schema),
            Column("name", String(64), primary_key=True),
            Column("holder", String(128), nullable=False),
            Column("token", BigInteger, nullable=False),
            Column("acquired_at", UTCDateTime, nullable=False),
            Column("expires_at", UTCDateTime, nullable=False),
        )
        where = f"{names.schema}.{names.leases}" if names.schema else names.leases
        # One statement, so two nodes asking at once cannot both win: the row's lock
        # orders them, and the second sees the first's holder. A holder renewing in time
        # keeps its token; anyone taking an expired lease (its old holder too) gets a new one.
        self._acquire = text(
            f"""
            INSERT INTO {where} AS lease (name, holder, token, acquired_at, expires_at)
            VALUES (:name, :holder, 1, {CLOCK}, {CLOCK} + make_interval(secs => :ttl))
            ON CONFLICT (name) DO UPDATE SET
                token = CASE WHEN lease.holder = :holder AND lease.expires_at > {CLOCK}
                             THEN lease.token ELSE lease.token + 1 END,
                acquired_at = CASE WHEN lease.holder = :holder AND lease.expires_at > {CLOCK}
                                   THEN lease.acquired_at ELSE {CLOCK} END,
                holder = :holder,
                expires_at = {CLOCK} + make_interval(secs => :ttl)
            WHERE lease.holder = :holder OR lease.expires_at <= {CLOCK}
            RETURNING lease.token
            """
        )

    def acquire(self, name: str, holder: str, ttl: float) -> int | None:
        """Take or renew the lease for `ttl` seconds: its token, or None if another holds it."""
        with self._engine.begin() as connection:
            connection.execute(_QUIET_LIMIT)
            connection.execute(_LOCK_WAIT)
            token = connection.execute(
                self._acquire, {"name": name, "holder": holder, "ttl": ttl}
            ).scalar()
        return None if token is None else int(token)

    def release(self, name: str, holder: str, token: int) -> None:
        """Let the lease go at once (a clean stop), so another node need not wait it out."""
        table = self.table
        with self._engine.begin() as connection:
            connection.execute(
                table.update()
                .where(table.c.name == name, table.c.holder == holder, table.c.token == token)
                .values(expires_at=text(CLOCK))
            )

    def get(self, name: str) -> Lease | None:
        """The lease as it is now, or None if nobody has ever held it."""
        table = self.table
        query = select(table, (table.c.expires_at > text(CLOCK)).label("valid"))
        with self._engine.connect() as connection:
            row = connection.execute(query.where(table.c.name == name)).first()
        if row is None:
            return None
        return Lease(row.name, row.holder, row.token, row.acquired_at, row.expires_at, row.valid)

    def hold(self, connection: Connection, name: str, holder: str, token: int) -> bool:
        """In the caller's transaction: whether `holder` still holds the lease with `token`,
        now, by the database's clock; the row stays share-locked until the transaction
        ends, so no new holder can take it meanwhile."""
        table = self.table
        connection.execute(_QUIET_LIMIT)
        query = (
            select(table.c.token)
            .where(
                table.c.name == name,
                table.c.holder == holder,
                table.c.token == token,
                table.c.expires_at > text(CLOCK),
            )
            .with_for_update(read=True)
        )
        return connection.execute(query).first() is not None
