"""Seed files: `tasse serve --pre-seed-jobs` with a real server, a real SQLite job store, a
real seed file on disk (watched) or a real local HTTP server (fetched); and the pure
parsing of a seed's text.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasse.tasks.seeds import parse_seed
from tasse.tasks.supertask import from_supertask
from tests.conftest import StartServer
from tests.http.test_api import Server, wait_until

#: a crontab line with a leading seconds field: fires every second
EVERY_SECOND = "* * * * * *"
#: the issue's promise: an edit of a local seed file applies within this
EDIT_APPLIES_WITHIN = 2.0


class SeedSite:
    """A real HTTP server in a thread, serving the files of one folder; counts the fetches."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.fetches = 0
        site = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                site.fetches += 1
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test output stays readable

        self.httpd = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
        )
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[SeedSite]:
    serving = SeedSite(tmp_path / "site")
    serving.thread.start()
    yield serving
    serving.httpd.shutdown()
    serving.httpd.server_close()
    serving.thread.join(timeout=5)


def write_seed(path: Path, items: Any) -> Path:
    """Write a seed as JSON or YAML (by its suffix), replacing the file in one step."""
    text = yaml.safe_dump(items) if path.suffix in (".yaml", ".yml") else json.dumps(items)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)  # a reader never sees a half-written seed
    return path


def tasks(server: Server) -> dict[str, dict[str, Any]]:
    """Every task the server lists, by name."""
    response = server.http.get("/tasks")
    assert response.status_code == 200, response.text
    return {task["name"]: task for task in response.json()}


def task_of(server: Server, name: str) -> dict[str, Any]:
    response = server.http.get(f"/tasks/{name}")
    assert response.status_code == 200, response.text
    task: dict[str, Any] = response.json()
    return task


def errors(server: Server) -> dict[str, str]:
    response = server.http.post("/rescan")
    assert response.status_code == 200, response.text
    found: dict[str, str] = response.json()["errors"]
    return found


def run(server: Server, name: str) -> tuple[dict[str, Any], str]:
    """Run the task now and wait for it: its final record and its output."""
    response = server.http.post(f"/tasks/{name}/run")
    assert response.status_code == 202, response.text
    done = server.finished(response.json()["id"])
    return done, server.http.get(f"/runs/{done['id']}/log").text


def wait_fire(server: Server, name: str, after: datetime | None = None) -> dict[str, Any]:
    """The first ended scheduled run of the task (due after `after`), waiting for it."""

    def check() -> dict[str, Any] | None:
        runs = server.http.get(f"/tasks/{name}/runs").json()
        for fire in reversed(runs):
            due = datetime.fromisoformat(fire["scheduled_at"])
            ended = fire["status"] not in ("queued", "running")
            if fire["trigger"] == "schedule" and ended and (after is None or due > after):
                return dict(fire)
        return None

    found: dict[str, Any] = wait_until(check, timeout=10)
    return found


def log_text(server: Server) -> str:
    return server.output.read_text()


# -- local seed files ----------------------------------------------------------------------


def test_a_json_seed_named_in_the_environment_runs_python_refs_and_fires_crontabs(
    start_server: StartServer, tmp_path: Path
) -> None:
    items = [
        {
            "name": "dumps",
            "python_ref": "json:dumps",
            "args": [{"b": 1, "a": [1, None]}],
            "kwargs": {"sort_keys": True},
        },
        {"name": "tick", "command": ["sh", "-c", "echo tick"], "schedule": EVERY_SECOND},
    ]
    seed = write_seed(tmp_path / "seed.json", items)
    server = start_server(TASSE_PRE_SEED_JOBS=str(seed))

    listed = tasks(server)
    assert set(listed) == {"dumps", "tick"}
    assert {task["source"] for task in listed.values()} == {"seed"}
    assert listed["dumps"]["definition"] == items[0]
    assert listed["tick"]["schedules"] == [EVERY_SECOND]
    assert server.http.get("/health").json()["errors"] == 0

    done, log = run(server, "dumps")
    assert (done["status"], log) == ("succeeded", '{"a": [1, null], "b": 1}\n')
    fire = wait_fire(server, "tick")
    assert fire["status"] == "succeeded"
    assert server.http.get(f"/runs/{fire['id']}/log").text == "tick\n"


def test_a_yaml_seed_loads_its_good_items_and_reports_the_bad_one_until_fixed(
    start_server: StartServer, tmp_path: Path
) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        """\
# YAML, not JSON: comments and bare words are fine
- name: greet
  description: says hello
  command: [echo, hello]
- name: greet-again
  task: greet
  args: [again]
- name: join
  python_ref: os.path:join
  args: [a, b]
- name: broken
  command: [echo, both]
  python_ref: os.path:join
"""
    )
    server = start_server("--pre-seed-jobs", str(seed))

    listed = tasks(server)
    assert set(listed) == {"greet", "greet-again", "join"}
    assert (listed["greet"]["source"], listed["greet"]["description"]) == ("seed", "says hello")
    problems = errors(server)
    assert list(problems) == ["seed problem 1"]
    assert "'broken'" in problems["seed problem 1"]
    assert "give exactly one of command, python_ref, task or sql" in problems["seed problem 1"]
    assert server.http.get("/health").json()["errors"] == 1
    assert "give exactly one of command, python_ref, task or sql" in log_text(server)

    assert run(server, "greet")[1] == "hello\n"
    assert run(server, "greet-again")[1] == "hello again\n"
    assert run(server, "join")[1] == "a/b\n"

    fixed = seed.read_text().replace("  command: [echo, both]\n", "")
    seed.with_name("fixed.yaml").write_text(fixed)
    os.replace(seed.with_name("fixed.yaml"), seed)
    wait_until(lambda: "broken" in tasks(server), timeout=EDIT_APPLIES_WITHIN)
    assert errors(server) == {}
    assert server.http.get("/health").json()["errors"] == 0


def test_a_supertask_cronjobs_json_runs_its_jobs_as_supertask_calls_them(
    start_server: StartServer, tmp_path: Path
) -> None:
    jobs = [
        {
            "id": 1,
            "name": "join",
            "description": "joins paths",
            "trigger_cron": "0 3 * * *",
            "exec_python_ref": "os.path:join",
            # Supertask calls func(exec_args): one list; join's own arguments come after.
            "exec_args": [],
            "exec_kwargs": {},
            "enabled": True,
        },
        {"id": 2, "name": "report", "trigger_cron": "*/10 * * * * *", "exec_sql": "SELECT 1"},
        {
            "id": 3,
            "name": "dumps",
            "trigger_cron": "*/10 * * * * * 2099",
            "exec_python_ref": "json:dumps",
            "exec_args": [1, 2],
            "exec_kwargs": {"separators": [",", ":"]},
        },
        {
            "id": 4,
            "name": "paused",
            "trigger_cron": EVERY_SECOND,
            "exec_python_ref": "os:getcwd",
            "enabled": False,
        },
    ]
    seed = write_seed(tmp_path / "cronjobs.json", jobs)
    server = start_server("--pre-seed-jobs", str(seed))

    listed = tasks(server)
    assert set(listed) == {"join", "report", "dumps", "paused"}
    join = listed["join"]
    assert (join["source"], join["description"], join["schedules"], join["title"]) == (
        "seed",
        "joins paths",
        ["0 3 * * *"],
        "join",
    )
    next_run = datetime.fromisoformat(join["next_run_at"])
    assert (next_run.hour, next_run.minute, next_run.second) == (3, 0, 0)
    assert listed["dumps"]["schedules"] == ["*/10 * * * * * 2099"]
    assert (listed["paused"]["enabled"], listed["paused"]["next_run_at"]) == (False, None)
    assert errors(server) == {}
    # An SQL job without `enabled` stays off, as Supertask had it (tests/tasks/test_sql_tasks.py)
    assert (listed["report"]["enabled"], listed["report"]["definition"]["sql"]) == (
        False,
        "SELECT 1",
    )

    # The list is one argument: dumps([1, 2]), not dumps(1, 2).
    assert run(server, "dumps")[1] == "[1,2]\n"
    done, output = run(server, "join")
    assert done["status"] == "failed"  # os.path.join([]) is Supertask's call too
    assert "TypeError" in output


def test_edits_to_the_seed_file_add_change_and_remove_tasks_within_two_seconds(
    start_server: StartServer, tmp_path: Path
) -> None:
    keep = {
        "name": "keep",
        "command": ["echo", "keep"],
        "schedules": [{"trigger": "interval", "seconds": 3600}],
    }
    seed = write_seed(
        tmp_path / "seed.json",
        [
            keep,
            {"name": "change", "command": ["echo", "one"], "description": "first"},
            {"name": "gone", "command": ["echo", "gone"]},
        ],
    )
    server = start_server("--pre-seed-jobs", str(seed))
    before = tasks(server)
    assert set(before) == {"keep", "change", "gone"}
    assert before["keep"]["next_run_at"] is not None
    time.sleep(0.1)  # a rescheduled interval would now start later than the first one

    edited = [
        keep,
        {"name": "change", "command": ["echo", "two"], "description": "second"},
        {"name": "new", "command": ["echo", "new"]},
    ]
    started = time.monotonic()
    write_seed(seed, edited)

    def applied() -> bool:
        now = tasks(server)
        return set(now) == {"keep", "change", "new"} and now["change"]["description"] == "second"

    wait_until(applied, timeout=EDIT_APPLIES_WITHIN)
    assert time.monotonic() - started <= EDIT_APPLIES_WITHIN

    after = tasks(server)
    assert after["keep"]["next_run_at"] == before["keep"]["next_run_at"]
    assert after["new"]["source"] == "seed"
    assert run(server, "change")[1] == "two\n"
    assert run(server, "new")[1] == "new\n"
    assert server.http.get("/tasks/gone").status_code == 404
    assert server.http.post("/tasks/gone/run").status_code == 404


def test_a_removed_seed_file_keeps_its_tasks_scheduled_until_it_is_back(
    start_server: StartServer, tmp_path: Path
) -> None:
    seed = write_seed(
        tmp_path / "seed.yaml",
        [{"name": "stay", "command": ["echo", "still here"], "schedule": EVERY_SECOND}],
    )
    server = start_server("--pre-seed-jobs", str(seed))
    assert set(tasks(server)) == {"stay"}

    seed.unlink()
    wait_until(lambda: "cannot be read" in log_text(server), timeout=EDIT_APPLIES_WITHIN)
    removed_at = datetime.now().astimezone()
    assert set(tasks(server)) == {"stay"}
    fire = wait_fire(server, "stay", after=removed_at)
    assert fire["status"] == "succeeded"
    assert server.http.get(f"/runs/{fire['id']}/log").text == "still here\n"

    write_seed(seed, [{"name": "back", "command": ["echo", "back"]}])
    wait_until(lambda: set(tasks(server)) == {"back"}, timeout=EDIT_APPLIES_WITHIN)


def test_a_seed_file_with_a_syntax_error_keeps_the_seeded_tasks(
    start_server: StartServer, tmp_path: Path
) -> None:
    seed = write_seed(tmp_path / "seed.yaml", [{"name": "stay", "command": ["echo", "hi"]}])
    server = start_server("--pre-seed-jobs", str(seed))
    assert set(tasks(server)) == {"stay"}

    broken = seed.with_name("broken.yaml")
    broken.write_text("- name: stay\n  command: [echo, hi\n")  # an edit saved half-way
    os.replace(broken, seed)
    wait_until(lambda: "not valid JSON or YAML" in str(errors(server)), timeout=2)
    assert set(tasks(server)) == {"stay"}


# -- seeds from a URL ----------------------------------------------------------------------


def test_a_seed_url_is_fetched_again_every_interval_and_kept_when_it_fails(
    start_server: StartServer, site: SeedSite
) -> None:
    page = write_seed(site.folder / "seed.json", [{"name": "first", "command": ["echo", "1"]}])
    server = start_server("--pre-seed-jobs", site.url("seed.json"), "--pre-seed-interval", "0.3")
    assert set(tasks(server)) == {"first"}

    write_seed(page, [{"name": "second", "command": ["echo", "2"]}])
    wait_until(lambda: set(tasks(server)) == {"second"}, timeout=3)
    assert tasks(server)["second"]["source"] == "seed"
    assert run(server, "second")[1] == "2\n"

    page.unlink()  # the site answers 404 now
    failed_from = site.fetches
    wait_until(lambda: site.fetches >= failed_from + 2, timeout=3)
    assert set(tasks(server)) == {"second"}
    assert "cannot be read" in log_text(server)


def test_a_seed_url_without_an_interval_is_fetched_once(
    start_server: StartServer, site: SeedSite
) -> None:
    page = write_seed(site.folder / "seed.yaml", [{"name": "first", "command": ["echo", "1"]}])
    server = start_server("--pre-seed-jobs", site.url("seed.yaml"))
    assert set(tasks(server)) == {"first"}
    assert site.fetches == 1

    write_seed(page, [{"name": "second", "command": ["echo", "2"]}])
    time.sleep(1.5)  # ample for a file watch (0.5 s polls); a URL is not watched
    assert set(tasks(server)) == {"first"}
    assert site.fetches == 1


# -- the job store, --pre-delete-jobs, and names taken elsewhere ---------------------------


def test_pre_delete_jobs_removes_api_and_seed_tasks_stored_by_an_earlier_run(
    start_server: StartServer, tmp_path: Path
) -> None:
    folder = tmp_path / "data" / "tasks" / "from-folder"
    folder.mkdir(parents=True)
    (folder / "task.py").write_text("print('folder')\n")
    seed = write_seed(
        tmp_path / "seed.json",
        [{"name": "keep", "command": ["echo", "keep"]}, {"name": "old", "command": ["true"]}],
    )
    first = start_server("--pre-seed-jobs", str(seed))
    created = first.http.post("/tasks", json={"name": "made", "command": ["echo", "api"]})
    assert created.status_code == 201, created.text
    assert first.stop()[0] == 0

    # Without the flag (and without a seed) the store gives every task back.
    second = start_server()
    sources = {name: task["source"] for name, task in tasks(second).items()}
    assert sources == {"from-folder": "folder", "keep": "seed", "old": "seed", "made": "api"}
    assert second.stop()[0] == 0

    write_seed(seed, [{"name": "keep", "command": ["echo", "kept"]}])
    third = start_server("--pre-seed-jobs", str(seed), "--pre-delete-jobs")
    sources = {name: task["source"] for name, task in tasks(third).items()}
    assert sources == {"from-folder": "folder", "keep": "seed"}
    assert third.http.get("/tasks/made").status_code == 404
    assert "3 API and seed task(s) removed" in log_text(third)
    assert run(third, "keep")[1] == "kept\n"
    assert run(third, "from-folder")[1] == "folder\n"


def test_a_seed_item_named_like_an_api_task_leaves_the_api_task_alone(
    start_server: StartServer, tmp_path: Path
) -> None:
    seed = write_seed(tmp_path / "seed.json", [{"name": "other", "command": ["echo", "o"]}])
    server = start_server("--pre-seed-jobs", str(seed))
    api = {"name": "clash", "command": ["echo", "api"]}
    assert server.http.post("/tasks", json=api).status_code == 201

    write_seed(
        seed,
        [
            {"name": "other", "command": ["echo", "o"]},
            {"name": "clash", "command": ["echo", "seed"]},
            {"name": "added", "command": ["echo", "a"]},
        ],
    )
    wait_until(lambda: "added" in tasks(server), timeout=EDIT_APPLIES_WITHIN)
    clash = task_of(server, "clash")
    assert (clash["source"], clash["definition"]) == ("api", api)
    assert run(server, "clash")[1] == "api\n"
    assert "'clash' is defined through the API" in log_text(server)

    # Dropping it from the seed must not delete the API task either.
    write_seed(seed, [{"name": "other", "command": ["echo", "o"]}])
    wait_until(lambda: "added" not in tasks(server), timeout=EDIT_APPLIES_WITHIN)
    assert task_of(server, "clash")["source"] == "api"


def test_a_seed_item_named_like_an_api_task_is_listed_with_the_errors(
    start_server: StartServer, tmp_path: Path
) -> None:
    seed = write_seed(tmp_path / "seed.json", [])
    server = start_server("--pre-seed-jobs", str(seed))
    created = server.http.post("/tasks", json={"name": "clash", "command": ["true"]})
    assert created.status_code == 201, created.text
    write_seed(seed, [{"name": "clash", "command": ["false"]}])
    wait_until(lambda: "'clash' is defined" in log_text(server), timeout=EDIT_APPLIES_WITHIN)
    assert "clash" in str(errors(server))


def test_a_folder_named_like_a_seed_task_is_reported_until_the_seed_drops_it(
    start_server: StartServer, tmp_path: Path
) -> None:
    folder = tmp_path / "data" / "tasks" / "shared"
    folder.mkdir(parents=True)
    (folder / "task.py").write_text("print('from the folder')\n")
    seed = write_seed(tmp_path / "seed.json", [{"name": "shared", "command": ["echo", "seed"]}])
    server = start_server("--pre-seed-jobs", str(seed))

    assert task_of(server, "shared")["source"] == "seed"
    assert run(server, "shared")[1] == "seed\n"
    problems = errors(server)
    assert "defined by the seed" in problems["shared (folder)"]

    write_seed(seed, [])
    # (For the moment between the seed task's removal and the folder's load, there is none.)
    wait_until(
        lambda: server.http.get("/tasks/shared").json().get("source") == "folder",
        timeout=EDIT_APPLIES_WITHIN,
    )
    assert run(server, "shared")[1] == "from the folder\n"
    assert errors(server) == {}


# -- parsing, without a server -------------------------------------------------------------


def test_parse_seed_reads_json_yaml_and_a_tasks_key_alike() -> None:
    items = [
        {"name": "a", "command": ["echo", "hi"], "schedule": "*/10 * * * * * 2030"},
        {"name": "b", "python_ref": "os.path:join", "args": ["x", 1], "kwargs": {}},
        {"name": "c", "task": "a", "params": {"who": "Ada"}},
    ]
    texts = [json.dumps(items), yaml.safe_dump(items), yaml.safe_dump({"tasks": items})]
    for text in texts:
        seed = parse_seed(text, "seed")
        assert seed.problems == []
        assert [d.name for d in seed.definitions] == ["a", "b", "c"]
        a, b, c = seed.definitions
        assert (a.command, a.schedule) == (["echo", "hi"], "*/10 * * * * * 2030")
        assert (b.python_ref, b.args) == ("os.path:join", ["x", 1])
        assert (c.task, c.params) == ("a", {"who": "Ada"})


def test_parse_seed_skips_each_bad_item_saying_where_and_why() -> None:
    text = json.dumps(
        [
            {"name": "good", "command": ["true"]},
            "not an object",
            {"name": "nothing"},
            {"name": "hour25", "command": ["true"], "schedule": "0 25 * * *"},
            {"name": "typo", "comand": ["true"]},
            {"name": "good", "command": ["false"]},
            {"name": "sql", "exec_sql": "SELECT 1", "exec_python_ref": "m:f"},
            {"name": "Bad ref", "trigger_cron": "* * * * *", "exec_python_ref": "no colon"},
            {"name": "also-good", "python_ref": "os:getcwd"},
        ]
    )
    seed = parse_seed(text, "seed.json")
    assert [(d.name, d.command or d.python_ref) for d in seed.definitions] == [
        ("good", ["true"]),
        ("also-good", "os:getcwd"),
    ]
    assert len(seed.problems) == 7
    expected = [
        # counted from 1, as a person counts the items of the file
        ("item 2", "object"),
        ("item 3", "give exactly one of command, python_ref, task or sql"),
        ("item 4", "25"),
        ("item 5", "comand"),
        ("item 6", "appears twice"),
        ("item 7", "both exec_sql and exec_python_ref"),
        ("item 8", "python_ref"),
    ]
    for problem, (where, why) in zip(seed.problems, expected, strict=True):
        assert f"seed.json: {where}" in problem
        assert why in problem


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("name: one\ncommand: [true]\n", "must be a list of tasks (got dict)"),
        ("", "must be a list of tasks (got NoneType)"),
        ("[{name: x, command: [true]}", "not valid JSON or YAML"),
    ],
)
def test_parse_seed_refuses_what_is_not_a_list(text: str, why: str) -> None:
    seed = parse_seed(text, "https://example.org/seed")
    assert seed.definitions == []
    assert len(seed.problems) == 1
    assert seed.problems[0].startswith("https://example.org/seed: ")
    assert why in seed.problems[0]


def test_from_supertask_maps_a_cronjob_to_a_definition() -> None:
    job = {
        "id": 7,
        "name": "nightly",
        "description": "cleans up",
        "trigger_cron": "0 3 * * *",
        "exec_python_ref": "tools.cleanup:run",
        "exec_args": ["old", 30],
        "exec_kwargs": {"dry_run": True},
        "enabled": False,
    }
    assert from_supertask(job, "cronjobs.json: item 0") == {
        "name": "nightly",
        "title": "nightly",
        "cronjob_id": 7,
        "python_ref": "tools.cleanup:run",
        "args": [["old", 30]],
        "kwargs": {"dry_run": True},
        "schedule": "0 3 * * *",
        "description": "cleans up",
        "enabled": False,
    }
    bare = from_supertask({"name": "n", "exec_python_ref": "m:f"}, "here")
    # Supertask runs only jobs marked enabled: an unmarked one stays off here too.
    assert bare == {
        "name": "n",
        "title": "n",
        "python_ref": "m:f",
        "args": [[]],
        "kwargs": {},
        "enabled": False,
    }


def test_from_supertask_maps_sql_jobs_to_sql_tasks() -> None:
    sql = from_supertask({"name": "report", "trigger_cron": "* * * * *", "exec_sql": "x"}, "here")
    assert (sql["sql"], sql.get("python_ref"), sql["enabled"]) == ("x", None, False)


def test_from_supertask_refuses_unknown_keys() -> None:
    with pytest.raises(ValueError, match=r"^here: job 'old': unknown key 'crontab'"):
        from_supertask({"name": "old", "crontab": "* * * * *", "exec_python_ref": "m:f"}, "here")


def test_parse_seed_takes_a_cronjobs_json_as_supertask_writes_it() -> None:
    # What Supertask's JsonResource.write() saves: `cronjob.dict()` of each job.
    written = {
        "id": 1,
        "name": "waiter",
        "trigger_cron": "*/5 * * * * * *",
        "exec_python_ref": "json:dumps",
        "exec_args": [],
        "exec_sql": None,
        "enabled": True,
        "last_run": None,
        "last_status": None,
    }
    seed = parse_seed(json.dumps([written]), "cronjobs.json")
    assert seed.problems == []
    assert [(d.name, d.python_ref) for d in seed.definitions] == [("waiter", "json:dumps")]


def test_unknown_keys_of_any_type_are_a_problem_not_a_crash() -> None:
    seed = parse_seed(
        '[{"name": "odd", "trigger_cron": "* * * * *", "exec_python_ref": "m:f", "note": 1}]',
        "c.json",
    )
    assert seed.definitions == []
    assert "unknown key 'note'" in seed.problems[0]
    mixed = parse_seed("- {name: odd, trigger_cron: '* * * * *', note: x, 1: y}\n", "c.yaml")
    assert mixed.definitions == []
    assert "unknown key" in mixed.problems[0]
