"""End to end: SQL tasks (`sql:`, `database:`) defined through the API and a Supertask seed,
run by a real `tasse serve` on an SQLite file, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StartServer
from tests.http.test_api import Server, wait_until
from tests.store.sql_databases import SLEEP, Database, database
from tests.store.test_store import require_server
from tests.tasks.test_defined import define, run, shared_server, task_of

__all__ = ["database", "shared_server"]  # the fixtures, for pytest


@pytest.fixture
def server(start_server: StartServer) -> Server:
    return start_server()


def test_rows_go_to_the_log_as_a_table_and_a_delete_says_what_it_removed(
    server: Server, database: Database
) -> None:
    metrics = f"{database.schema}.metrics"
    body = {"name": "latest", "sql": f"SELECT id, name FROM {metrics} ORDER BY id"}
    define(server, {**body, "database": database.url})
    done, log = run(server, "latest")
    assert (done["status"], done["exit_code"]) == ("succeeded", 0)
    assert log.splitlines()[1:] == [
        "id | name",
        "---+------",
        " 1 | old",
        " 2 | older",
        " 3 | new",
        "(3 rows)",
        "committed",
    ]

    define(
        server,
        {"name": "prune", "sql": f"DELETE FROM {metrics} WHERE ts < 3", "database": database.url},
    )
    done, log = run(server, "prune")
    assert done["status"] == "succeeded"
    assert log.splitlines()[1:] == ["2 rows affected", "committed"]
    assert database.execute(f"SELECT name FROM {metrics}") == [("new",)]


def test_a_database_error_fails_the_run_with_the_databases_message(
    server: Server, database: Database
) -> None:
    define(server, {"name": "typo", "sql": "SELECT * FROM no_such_table", "database": database.url})
    done, log = run(server, "typo")
    assert (done["status"], done["exit_code"]) == ("failed", 1)
    last = log.splitlines()[-1]
    assert last.startswith("error: "), log
    assert "no_such_table" in last
    assert "Traceback" not in log


def test_the_timeout_stops_the_statement_in_the_database_too(
    server: Server, database: Database
) -> None:
    # The run ends `timed_out` as any task past its timeout does (retries and notices
    # treat it so); the database's own statement timeout makes sure the work stops there
    # as well, even where the killed client's session would have gone on.
    marker = f"tasse{uuid.uuid4().hex[:8]}"
    body = {"name": "slow", "sql": f"{SLEEP[database.backend]} -- {marker}", "timeout": 1}
    define(server, {**body, "database": database.url})
    done, _ = run(server, "slow")
    assert done["status"] == "timed_out"
    assert done["error"] == "ran longer than its timeout of 1 s"
    if database.backend == "sqlite":
        return  # SQLite ran inside the killed process
    sessions = {
        "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%{}%'",
        "mariadb": "SELECT count(*) FROM information_schema.processlist WHERE info LIKE '%{}%'",
    }[database.backend]
    # (the look-up itself matches the pattern: one session is ours)
    wait_until(lambda: database.execute(sessions.format(marker)) == [(1,)], timeout=3)


def test_the_password_is_masked_in_the_api_the_page_and_the_logs(start_server: StartServer) -> None:
    url = require_server("postgresql").replace("postgres@", "postgres:s3cret@")  # trust auth
    server = start_server()
    define(server, {"name": "count", "sql": "SELECT 41 + 1 AS answer", "database": url})
    shown = task_of(server, "count")
    masked = url.replace("s3cret", "***")
    assert shown["definition"] == {
        "name": "count",
        "sql": "SELECT 41 + 1 AS answer",
        "database": masked,
    }
    assert "s3cret" not in json.dumps(shown)
    done, log = run(server, "count")
    assert done["status"] == "succeeded"
    assert log.splitlines() == [
        f"database {masked}",
        "answer",
        "------",
        "    42",
        "(1 row)",
        "committed",
    ]
    page = server.http.get("/tasks/count", headers={"accept": "text/html"}).text
    assert "SELECT 41 + 1 AS answer" in page
    assert "s3cret" not in page
    # A definition read back and sent again keeps the password it had.
    replaced = server.http.put("/tasks/count", json={**shown["definition"], "timeout": 5})
    assert replaced.status_code == 200, replaced.text
    assert run(server, "count")[0]["status"] == "succeeded"
    store = Database("sqlite", f"sqlite:///{server.data_dir / 'tasse.db'}", "main")
    kept = store.execute("SELECT definition FROM tasse_tasks WHERE name = 'count'")
    assert json.loads(kept[0][0])["database"] == url  # (trust auth would take any password)
    everything = [*Path(server.data_dir, "logs").rglob("*.*"), server.output]
    assert not [str(file) for file in everything if "s3cret" in file.read_text(errors="replace")]


def test_without_a_database_the_statement_runs_on_the_job_store(server: Server) -> None:
    define(server, {"name": "peek", "sql": "SELECT name FROM tasse_tasks ORDER BY name"})
    done, log = run(server, "peek")
    assert done["status"] == "succeeded", log
    assert log.splitlines()[1:] == ["name", "----", "peek", "(1 row)", "committed"]
    assert log.splitlines()[0] == f"database sqlite:///{server.data_dir.resolve() / 'tasse.db'}"


def test_supertasks_exec_sql_jobs_load_as_sql_tasks_on_the_job_store(
    start_server: StartServer, tmp_path: Path
) -> None:
    jobs = [
        {
            "id": 2,
            "name": "report",
            "trigger_cron": "0 3 * * *",
            "exec_sql": "SELECT 7 AS n",
            "enabled": False,
        },
        {
            "id": 3,
            "name": "on",
            "trigger_cron": "0 3 * * *",
            "exec_sql": "SELECT 8 AS n",
            "enabled": True,
        },
    ]
    seed = tmp_path / "cronjobs.json"
    seed.write_text(json.dumps(jobs))
    server = start_server("--pre-seed-jobs", str(seed))
    report = task_of(server, "report")
    assert (report["source"], report["enabled"], report["error"]) == ("seed", False, None)
    assert report["definition"]["sql"] == "SELECT 7 AS n"
    assert task_of(server, "on")["enabled"] is True
    done, log = run(server, "report")  # disabled: off the schedule, still runnable by hand
    assert done["status"] == "succeeded"
    assert log.splitlines()[1:4] == ["n", "-", "7"]


@pytest.mark.parametrize(
    ("body", "key", "why"),
    [
        ({"sql": "  \n"}, "sql", "not blank"),
        (
            {"sql": "SELECT 1", "database": "postgres//u:s3cret@h"},
            "database",
            "not a SQLAlchemy URL",
        ),
        ({"sql": "SELECT 1", "database": "nosuch://h/db"}, "database", "no dialect 'nosuch'"),
        ({"sql": "SELECT 1", "requirements": ["six"]}, "", "requirements does not go with sql"),
        ({"sql": "SELECT 1", "args": [1]}, "", "args does not go with sql"),
        ({"sql": "SELECT 1", "kwargs": {"a": 1}}, "", "kwargs go with python_ref"),
        ({"sql": "SELECT 1", "command": ["true"]}, "", "got command and sql"),
        ({"command": ["true"], "database": "sqlite://"}, "", "database goes with sql"),
    ],
)
def test_bad_sql_definitions_are_refused_naming_the_key(
    shared_server: Server, body: dict[str, Any], key: str, why: str
) -> None:
    response = shared_server.http.post("/tasks", json={"name": "bad", **body})
    assert response.status_code == 422, response.text
    detail = json.dumps(response.json())
    assert why in detail
    assert key in detail
    assert "s3cret" not in detail
