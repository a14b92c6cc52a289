"""The program an SQL task's run is: `python -P -m tasse.store.sql_task STATEMENT`.

The runner starts it like any task process (its own process group, the task's timeout,
its output into the run's log), with the server's own interpreter, which has SQLAlchemy
and the drivers: an SQL task needs no environment of its own. It lives in the store, the
one part that imports SQLAlchemy, and uses nothing of the server beyond the store's way
of reading addresses.

The database comes in TASSE_SQL_DATABASE, not on the command line, which `ps` shows every
user of the machine; the run's timeout in TASSE_TIMEOUT becomes the statement timeout,
so the database itself stops the work even when this process is killed (PostgreSQL keeps
running a statement whose client died). The statement runs in one transaction, committed
when it succeeds. A database error is printed as the database's message, last, and the
exit code is 1.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Connection, CursorResult
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from tasse.store.database import driver_url, install_hint, shown_address
from tasse.store.result_table import MAX_ROWS_SHOWN, count_line, table_lines

#: carries the database's address into the run
DATABASE_VARIABLE = "TASSE_SQL_DATABASE"
#: the run's timeout in seconds, as every run sees it (empty without one)
TIMEOUT_VARIABLE = "TASSE_TIMEOUT"
#: exit codes: the database refused or failed the statement; the run could not even try
FAILED, UNUSABLE = 1, 2
#: rows fetched at a time: a large result is counted without being held whole
_BATCH = 500


def command(statement: str) -> tuple[str, ...]:
    """The argv of a run of `statement`, in this interpreter (it has SQLAlchemy, the drivers).

    `-P`: the run's folder, its cwd, is not put first on sys.path, where a stray
    `sqlalchemy.py` would be imported instead of the real one.
    """
    return (sys.executable, "-P", "-m", __spec__.name if __spec__ else __name__, statement)


def main(argv: Sequence[str]) -> int:
    """Run the statement `argv[0]` on the database; the exit code says how it went."""
    if len(argv) != 1:
        return _unusable(f"an SQL task takes no arguments (got {len(argv) - 1})")
    address = os.environ.get(DATABASE_VARIABLE, "")
    if address in ("memory://", "memory:"):
        return _unusable(
            "the job store is memory://, inside the server's own process where no run "
            "reaches it: give the task a `database`"
        )
    try:
        url = driver_url(address)
        engine = create_engine(url, poolclass=NullPool)  # imports the driver
    except ImportError as error:
        module = (error.name or url.get_driver_name()).partition(".")[0]
        shown = shown_address(address)
        return _unusable(f"the driver of {shown} is not installed: {install_hint(module)}")
    except (SQLAlchemyError, ValueError) as error:
        return _unusable(f"{DATABASE_VARIABLE} is not a usable SQLAlchemy URL: {error}")
    timeout = _timeout()
    limit = f", statement timeout {timeout:g} s" if timeout else ""
    print(f"database {shown_address(address)}{limit}")
    # The runner stops a run with SIGTERM. Taken as Ctrl-C, it makes psycopg cancel the
    # statement on the server at once; elsewhere the statement timeout ends it.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.monotonic()
    try:
        with engine.begin() as connection:
            _limit(connection, timeout)
            _report(connection.exec_driver_sql(argv[0]))
    except DBAPIError as error:
        return _failed(_message(error), url, timeout, time.monotonic() - started)
    except SQLAlchemyError as error:
        return _failed(str(error), url, timeout, time.monotonic() - started)
    except KeyboardInterrupt:
        print("stopped before the statement finished: nothing of it is committed")
        return 128 + signal.SIGTERM
    finally:
        engine.dispose()
    print("committed")
    return 0


def _timeout() -> float | None:
    try:
        seconds = float(os.environ.get(TIMEOUT_VARIABLE) or 0)
    except ValueError:
        return None
    return seconds if seconds > 0 and math.isfinite(seconds) else None


def _limit(connection: Connection, seconds: float | None) -> None:
    """The database's own statement timeout, in each dialect's words."""
    if seconds is None:
        return
    dialect = connection.dialect
    milliseconds = max(1, math.ceil(seconds * 1000))
    if dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET statement_timeout = {milliseconds}")
    elif getattr(dialect, "is_mariadb", False):
        connection.exec_driver_sql(f"SET SESSION max_statement_time = {seconds:.6f}")
    elif dialect.name == "mysql":  # MySQL's limit holds for SELECT only
        connection.exec_driver_sql(f"SET SESSION max_execution_time = {milliseconds}")
    elif dialect.name == "sqlite":
        _interrupt_after(connection, seconds)
    # Other dialects: the runner's timeout stops the process, which ends the session.


def _interrupt_after(connection: Connection, seconds: float) -> None:
    # SQLite runs in this process and has no statement timeout: a progress handler that
    # turns true at the deadline interrupts the statement, which SQLite rolls back.
    deadline = time.monotonic() + seconds
    sqlite = connection.connection.driver_connection
    assert sqlite is not None
    sqlite.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)


def _report(result: CursorResult[Any]) -> None:
    """Rows as a table with a count, or how many rows the statement changed."""
    if not result.returns_rows:
        if result.rowcount >= 0:  # -1: the driver does not know (DDL)
            print(f"{result.rowcount:,} row{'' if result.rowcount == 1 else 's'} affected")
        return
    columns = list(result.keys())
    shown: list[Any] = []
    total = 0
    while batch := result.fetchmany(_BATCH):
        total += len(batch)
        shown += batch[: MAX_ROWS_SHOWN - len(shown)]
    for line in table_lines(columns, shown):
        print(line)
    print(count_line(len(shown), total))


def _message(error: DBAPIError) -> str:
    """The database's own words, without SQLAlchemy's wrapping (statement, link)."""
    original = error.orig
    arguments: tuple[Any, ...] = getattr(original, "args", ())
    if len(arguments) == 2 and isinstance(arguments[0], int) and isinstance(arguments[1], str):
        return f"{arguments[1]} (error {arguments[0]})"  # PyMySQL: (code, message)
    return str(original).strip() or type(original).__name__


def _failed(message: str, url: URL, timeout: float | None, elapsed: float) -> int:
    if url.password:  # a driver may quote its connection string
        message = message.replace(str(url.password), "***")
    first, *context = message.splitlines() or [""]
    if timeout is not None and elapsed >= timeout:
        first += f" (the statement timeout is {timeout:g} s)"
    # The database's context (PostgreSQL's `LINE 1: …` and its caret) above, the error
    # itself last: the last line of a run's log is what a person reads first.
    for line in context:
        print(f"  {line}")
    print(f"error: {first}")
    return FAILED


def _unusable(problem: str) -> int:
    print(f"error: {problem}")
    return UNUSABLE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
