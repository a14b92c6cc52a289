"""Supertask's `cronjobs.json` as Tasse reads it: its upstream example file as it is, names
made from free text, titles, and Supertask's call convention in a real run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from tasse.tasks.seeds import parse_seed
from tasse.tasks.supertask import slug, task_names
from tasse.tasks.task import TaskSpec
from tasse.values import MAX_TITLE_LENGTH, TASK_NAME_PATTERN
from tests.conftest import StartServer
from tests.http.test_api import wait_until
from tests.tasks.test_seeds import run, tasks, write_seed

#: pyveci/supertask's cronjobs.json exactly as upstream has it (commit 5d4e1b8)
UPSTREAM = Path(__file__).parent / "fixtures" / "supertask_cronjobs.json"


def test_the_upstream_python_job_loads_with_its_title_and_supertasks_call() -> None:
    seed = parse_seed(UPSTREAM.read_text(), "cronjobs.json")

    python = {d.name: d for d in seed.definitions}["example-python-reference"]
    assert python.title == "Example Python reference"
    assert python.python_ref == "supertask.vendor.jobs:example_waiter"
    assert python.args == [[]]  # func(exec_args): the empty list is its one argument
    assert (python.schedule, python.enabled, python.cronjob_id) == ("*/5 * * * * * *", True, 1)


def test_the_upstream_file_loads_all_three_jobs_the_sql_ones_disabled() -> None:
    seed = parse_seed(UPSTREAM.read_text(), "cronjobs.json")

    assert seed.problems == []
    loaded = {d.name: d for d in seed.definitions}
    assert set(loaded) == {"example-sql-i", "example-python-reference", "example-sql-ii"}
    for name, statement in (
        ("example-sql-i", "select * from testx"),
        ("example-sql-ii", "select 1"),
    ):
        sql = loaded[name].model_dump()
        assert (sql["sql"], sql["enabled"]) == (statement, False)
    assert loaded["example-sql-ii"].title == "Example SQL II"


def test_names_are_slugs_of_free_text_valid_names_stay_and_collisions_take_the_id() -> None:
    items = [
        {"id": 1, "name": "Backup DB"},
        {"id": 2, "name": "backup  db!"},
        {"id": 3, "name": "report"},
        {"id": 4, "name": "Report"},
        {"id": 5, "name": "nightly-backup"},
        {"id": 7, "name": "Nightly backup"},
        {"id": 8, "name": "¡¿…?!"},
        {"id": 9, "name": "Grüße aus Köln"},
    ]
    names = task_names(items)

    assert names == [
        "backup-db-1",
        "backup-db-2",
        "report",
        "Report",
        "nightly-backup",
        "nightly-backup-7",
        "cronjob-8",
        "grusse-aus-koln",
    ]
    # The same names whatever the items' order: no job's name depends on where it stands.
    assert task_names(items[::-1]) == names[::-1]
    assert all(name and re.fullmatch(TASK_NAME_PATTERN, name) for name in names)


def test_a_long_free_text_name_makes_a_valid_task_name() -> None:
    made = slug("A very long name " * 10)
    assert len(made) <= 48
    assert not made.endswith("-")
    long = task_names([{"id": 123456, "name": "x " * 100}, {"id": 2, "name": "X " * 100}])
    assert all(name is not None and len(name) <= 64 for name in long)


def test_a_title_is_one_line_of_text_of_bounded_length() -> None:
    assert TaskSpec(title="  Nightly report ").title == "Nightly report"
    assert TaskSpec(title=2026).title == "2026"  # YAML's number, as text
    assert TaskSpec().title is None
    for bad, said in (
        ("two\nlines", "one line"),
        ("a\u2028b", "one line"),
        ("   ", "is empty"),
        ("x" * (MAX_TITLE_LENGTH + 1), f"at most {MAX_TITLE_LENGTH}"),
        ("nul\x00", "NUL"),
    ):
        with pytest.raises(ValidationError, match=said):
            TaskSpec(title=bad)


def test_supertasks_command_line_serves_its_example_and_runs_as_supertask_calls(
    start_server: StartServer, tmp_path: Path
) -> None:
    jobs = json.loads(UPSTREAM.read_text())
    # The example's own target needs Supertask installed; json.dumps shows the call as well.
    python = next(job for job in jobs if job.get("exec_python_ref"))
    python.update(exec_python_ref="json:dumps", exec_args=[{"a": 1}])
    seed = write_seed(tmp_path / "cronjobs.json", jobs)
    server = start_server("--pre-seed-jobs", str(seed))

    listed = tasks(server)
    loaded = listed["example-python-reference"]
    assert (loaded["title"], loaded["source"], loaded["enabled"]) == (
        "Example Python reference",
        "seed",
        True,
    )
    done, output = run(server, "example-python-reference")
    assert (done["status"], output) == ("succeeded", '[{"a": 1}]\n')  # dumps([{"a": 1}])

    found = server.http.get("/tasks", params={"q": "python REF"}).json()
    assert [task["name"] for task in found] == ["example-python-reference"]


def test_a_folder_title_is_shown_and_found_and_none_is_null(
    start_server: StartServer,
) -> None:
    server = start_server()
    server.task("report", "title: Monthly sales report\n")
    server.task("plain", None)
    server.http.post("/rescan")

    assert server.http.get("/tasks/report").json()["title"] == "Monthly sales report"
    assert server.http.get("/tasks/plain").json()["title"] is None
    found = server.http.get("/tasks", params={"q": "sales"}).json()
    assert [task["name"] for task in found] == ["report"]
    page = server.http.get("/", headers={"Accept": "text/html"}).text
    assert 'Monthly sales report <code class="task-name">report</code>' in page
    heading = server.http.get("/tasks/report", headers={"Accept": "text/html"}).text
    assert "<title>Monthly sales report" in heading
    run = server.http.post("/tasks/report/run").json()
    run_page = server.http.get(f"/runs/{run['id']}", headers={"Accept": "text/html"}).text
    arrow = "\N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK}"
    assert f'<a href="/tasks/report">Monthly sales report</a> {arrow} run' in run_page
    # the timeline draws runs that started: wait for this one to have run
    ran = wait_until(lambda: server.http.get(f"/runs/{run['id']}").json()["started_at"], timeout=60)
    assert ran
    timeline = server.http.get("/timeline", headers={"Accept": "text/html"}).text
    assert "<title>Monthly sales report (report)</title>" in timeline

    server.task("broken", "title: |\n  two\n  lines\n")
    errors = server.http.post("/rescan").json()["errors"]
    assert "title" in errors["broken"]
    assert "one line" in errors["broken"]
