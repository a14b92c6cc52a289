"""Engines and column types for any SQLAlchemy URL, tuned for Tasse's short writes."""

from __future__ import annotations

import functools
import math
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, String, TypeDecorator, create_engine, event
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeEngine

from tasse.errors import StoreDriverMissingError

#: a bare scheme gets the driver Tasse's extras install (`postgres`, `mysql`)
_DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
#: a driver's module → how to install it
_INSTALL = {
    "psycopg": "pip install 'tasse[postgres]'",
    "pymysql": "pip install 'tasse[mysql]'",
    "psycopg2": "pip install psycopg2-binary",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and gives them back aware (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        # MySQL's DATETIME drops microseconds unless asked; run ids and times must not.
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        # SQLite keeps datetimes as text, which SQLAlchemy parses with a regular expression
        # per value: a third of reading a run. The same text, read by fromisoformat instead.
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String())
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if not value:
            return None
        utc = value.astimezone(UTC).replace(tzinfo=None)
        # SQLAlchemy's own SQLite format, always with microseconds: text compares as time
        return utc.isoformat(" ", "microseconds") if dialect.name == "sqlite" else utc

    def process_result_value(
        self, value: datetime | str | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value + "+00:00")  # 7 times faster than .replace
        return value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Timeouts:
    """How long the store may take: a hung database costs a timeout, not the server."""

    #: seconds to open a connection (or get one from the pool)
    connect: float = 5.0
    #: seconds one statement may run (or wait for a lock) before the database stops it
    statement: float = 10.0


#: what a store gets when its owner sets none
DEFAULT_TIMEOUTS = Timeouts()


def make_engine(address: str, timeouts: Timeouts = DEFAULT_TIMEOUTS) -> Engine:
    """An engine for a store address; `memory://` is a private in-process SQLite database."""
    if address in ("memory://", "memory:"):
        return create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    url = driver_url(address)
    backend = url.get_backend_name()
    if backend != "sqlite":
        try:
            return create_engine(  # imports the driver
                url,
                pool_pre_ping=True,
                pool_timeout=timeouts.connect,
                connect_args=_server_timeouts(backend, timeouts),
            )
        except ImportError as error:
            raise _driver_missing(url, error) from None
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": timeouts.statement}
    )
    event.listen(engine, "connect", functools.partial(_tune_sqlite, timeouts=timeouts))
    return engine


def driver_url(address: str) -> URL:
    """The address as SQLAlchemy reads it, a bare scheme given the driver Tasse installs."""
    url = make_url(address)
    if url.drivername in _DRIVERS:
        url = url.set(drivername=_DRIVERS[url.drivername])
    return url


def absolute_address(address: str) -> str:
    """The address with a relative SQLite path made absolute (a run's cwd is elsewhere)."""
    url = make_url(address)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return address
    if url.database.startswith("file:") or Path(url.database).is_absolute():
        return address  # a URI filename (`?uri=true`) says where it is itself
    absolute = url.set(database=str(Path(url.database).resolve()))
    return absolute.render_as_string(hide_password=False)


def check_address(address: str) -> None:
    """Raise ValueError, without quoting the address (it may hold a password), unless
    SQLAlchemy can read it and knows its dialect (the driver is imported only to connect)."""
    try:
        url = driver_url(address)
    except (ArgumentError, ValueError):
        raise ValueError(
            "is not a SQLAlchemy URL (dialect+driver://user:password@host:port/database)"
        ) from None
    try:
        url.get_dialect()
    except NoSuchModuleError:
        raise ValueError(f"SQLAlchemy has no dialect {url.drivername!r}") from None


def _driver_missing(url: URL, error: ImportError) -> StoreDriverMissingError:
    # One line saying what to install, not thirty of SQLAlchemy's import machinery.
    module = (error.name or url.get_driver_name()).partition(".")[0]
    return StoreDriverMissingError(
        url.render_as_string(hide_password=True), module, install_hint(module)
    )


def install_hint(module: str) -> str:
    """How to install a missing driver module."""
    return _INSTALL.get(module, f"install the package that provides {module!r}")


def _server_timeouts(backend: str, timeouts: Timeouts) -> dict[str, Any]:
    milliseconds = int(timeouts.statement * 1000)
    if backend == "postgresql":
        # Enforced by the server; a server that does not answer at all (paused, cut off)
        # is the writer's deadline's to notice (store/writer.py).
        return {
            "connect_timeout": max(1, math.ceil(timeouts.connect)),
            "options": f"-c statement_timeout={milliseconds} -c lock_timeout={milliseconds}",
        }
    if backend in ("mysql", "mariadb"):
        # PyMySQL's read and write timeouts are the client's own: they hold when the
        # server does not answer at all.
        return {
            "connect_timeout": max(1, math.ceil(timeouts.connect)),
            "read_timeout": timeouts.statement,
            "write_timeout": timeouts.statement,
        }
    return {}


def shown_address(address: str) -> str:
    """A store address fit for messages and logs: the password masked."""
    try:
        return make_url(address).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: show only its scheme
        return address.partition(":")[0] + "://…"


def first_line(error: BaseException) -> str:
    """An error's first line (a driver's message can run to a page), or its type's name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _tune_sqlite(connection: Any, _record: Any, timeouts: Timeouts) -> None:
    # WAL lets the API read while a run is recorded; NORMAL syncs at checkpoints only,
    # which keeps a commit well under a millisecond and still survives a process crash.
    cursor = connection.cursor()
    deadline = time.monotonic() + timeouts.statement
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as error:
            # Connections switching a new database to WAL together: SQLite tells the
            # others "locked" at once, without waiting its busy timeout. Wait here.
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(timeouts.statement * 1000)}")
    cursor.close()
