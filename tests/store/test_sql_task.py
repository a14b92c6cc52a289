"""The SQL task's program (`python -m tasse.store.sql_task`), run as the runner runs it, on
an SQLite file, PostgreSQL and MariaDB; and its table of rows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from decimal import Decimal
from pathlib import Path

from tasse.store.result_table import count_line, table_lines
from tasse.store.sql_task import DATABASE_VARIABLE, TIMEOUT_VARIABLE, command
from tests.http.test_api import wait_until
from tests.store.sql_databases import CANCELLED, SLEEP, Database, database
from tests.store.test_store import require_server

__all__ = ["database"]  # the fixture, for pytest


def run_sql(
    statement: str, url: str, cwd: Path, *extra: str, timeout: float | None = None
) -> tuple[int, list[str]]:
    """Run the program on a statement; its exit code and output lines."""
    env = {**os.environ, DATABASE_VARIABLE: url, TIMEOUT_VARIABLE: f"{timeout or ''}"}
    completed = subprocess.run(
        [*command(statement), *extra],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completed.stderr == ""
    return completed.returncode, completed.stdout.splitlines()


def test_a_select_prints_its_rows_as_a_table(database: Database, tmp_path: Path) -> None:
    statement = f"SELECT id, name FROM {database.schema}.metrics ORDER BY id"
    code, lines = run_sql(statement, database.url, tmp_path)
    assert code == 0
    assert lines[1:] == [
        "id | name",
        "---+------",
        " 1 | old",
        " 2 | older",
        " 3 | new",
        "(3 rows)",
        "committed",
    ]


def test_a_delete_says_how_many_rows_it_removed_and_commits(
    database: Database, tmp_path: Path
) -> None:
    code, lines = run_sql(
        f"DELETE FROM {database.schema}.metrics WHERE ts < 3", database.url, tmp_path
    )
    assert (code, lines[1:]) == (0, ["2 rows affected", "committed"])
    assert database.execute(f"SELECT name FROM {database.schema}.metrics") == [("new",)]


def test_a_database_error_is_the_last_line_and_rolls_back(
    database: Database, tmp_path: Path
) -> None:
    # The insert works, the statement as a whole does not: nothing of it stays.
    statement = f"INSERT INTO {database.schema}.metrics VALUES (4, 'x', 4), (1, 'dup', 1)"
    code, lines = run_sql(statement, database.url, tmp_path)
    assert code == 1
    assert lines[-1].startswith("error: ")
    assert any(word in lines[-1].lower() for word in ("unique", "duplicate")), lines
    assert "Traceback" not in "\n".join(lines)
    assert database.execute(f"SELECT count(*) FROM {database.schema}.metrics") == [(3,)]


def test_the_timeout_is_the_databases_statement_timeout(database: Database, tmp_path: Path) -> None:
    # Nothing kills the process here: the database stops the statement itself.
    started = time.monotonic()
    code, lines = run_sql(SLEEP[database.backend], database.url, tmp_path, timeout=1)
    assert code == 1
    assert lines[0].endswith(", statement timeout 1 s")
    assert lines[-1].startswith(CANCELLED[database.backend]), lines
    assert time.monotonic() - started < 4


def test_text_that_looks_like_bind_parameters_reaches_the_database_as_written(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    code, lines = run_sql("SELECT ':name' AS a, '100%' AS b", url, tmp_path)
    assert (code, lines[1:4]) == (0, ["a     | b", "------+-----", ":name | 100%"])


def test_the_password_is_never_printed_and_problems_are_one_line(tmp_path: Path) -> None:
    code, lines = run_sql("SELECT 1", "postgresql://u:s3cret@127.0.0.1:1/db", tmp_path)
    assert code == 1
    assert lines[0] == "database postgresql://u:***@127.0.0.1:1/db"
    assert lines[-1].startswith("error: connection failed")
    assert "s3cret" not in "\n".join(lines)
    code, lines = run_sql("SELECT 1", "postgresql+psycopg2://u:s3cret@h/db", tmp_path)
    assert (code, lines) == (
        2,
        [
            "error: the driver of postgresql+psycopg2://u:***@h/db is not installed: "
            "pip install psycopg2-binary"
        ],
    )
    code, lines = run_sql("SELECT 1", "memory://", tmp_path)
    assert (code, len(lines)) == (2, 1)
    assert "give the task a `database`" in lines[0]
    code, lines = run_sql("SELECT 1", f"sqlite:///{tmp_path / 'x.db'}", tmp_path, "extra")
    assert (code, lines) == (2, ["error: an SQL task takes no arguments (got 1)"])


def test_a_stray_module_in_the_runs_folder_is_not_imported(tmp_path: Path) -> None:
    (tmp_path / "sqlalchemy.py").write_text("raise SystemExit('the stray one')\n")
    code, lines = run_sql("SELECT 2 AS two", f"sqlite:///{tmp_path / 'x.db'}", tmp_path)
    assert (code, lines[-2]) == (0, "(1 row)")


def test_the_table_aligns_numbers_and_keeps_one_row_to_a_line() -> None:
    rows = [(1, "a\nb", None, Decimal("2.50"), b"\x01\xff"), (10, "x" * 300, "c", None, None)]
    lines = table_lines(["n", "text", "maybe", "price", "raw"], rows)
    assert lines[0] == "n  | text" + " " * 196 + " | maybe | price | raw"
    assert lines[2] == " 1 | a\\nb" + " " * 196 + " | NULL  |  2.50 | \\x01ff"
    assert lines[3] == "10 | " + "x" * 199 + "… | c     |  NULL | NULL"
    assert table_lines(["empty"], []) == ["empty", "-----"]


def test_the_count_says_when_rows_were_left_out() -> None:
    assert count_line(1, 1) == "(1 row)"
    assert count_line(0, 0) == "(0 rows)"
    assert count_line(1000, 5000) == "(5,000 rows; the first 1,000 shown)"


def test_a_stopped_run_cancels_its_statement_on_postgresql(tmp_path: Path) -> None:
    # Without a timeout only the cancel stops it: PostgreSQL would sleep on for a minute.
    url = require_server("postgresql")
    marker = f"tasse{uuid.uuid4().hex[:8]}"
    env = {**os.environ, DATABASE_VARIABLE: url, TIMEOUT_VARIABLE: ""}
    with subprocess.Popen(
        command(f"SELECT pg_sleep(60) -- {marker}"), cwd=tmp_path, env=env, stdout=subprocess.PIPE
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline().startswith(b"database ")
        sessions = f"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%{marker}%'"
        place = Database("postgresql", url, "public")
        wait_until(lambda: place.execute(sessions) == [(2,)])  # its session, and this look-up
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 128 + signal.SIGTERM
        assert process.stdout.read().decode().splitlines() == [
            "stopped before the statement finished: nothing of it is committed"
        ]
        assert place.execute(sessions) == [(1,)]
