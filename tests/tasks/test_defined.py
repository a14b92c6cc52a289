"""End to end: tasks defined through the HTTP API (`command`, `python_ref`, `task`), with a
real `tasse serve`, its real SQLite job store, real task processes and the real CLI.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StartServer
from tests.envs.test_env_e2e import installed_six
from tests.http.test_api import Server, wait_until

#: a crontab line with a leading seconds field: fires every second
EVERY_SECOND = "* * * * * *"
#: the Python running these tests; a task asking for it gets it (Tasse never downloads one)
THIS_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
#: statuses of a run that has not ended
LIVE = ("queued", "running")
#: a build of `six` from the registry takes well under a second here; this is for slow ones
BUILD_TIMEOUT = 30.0


@pytest.fixture
def server(start_server: StartServer) -> Server:
    return start_server()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the many requests that must change nothing."""
    data = tmp_path_factory.mktemp("shared") / "data"
    (data / "tasks").mkdir(parents=True)
    server = Server(data)
    server.start()
    yield server
    code, output = server.stop()
    server.http.close()
    assert code == 0, output


def define(server: Server, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    """POST /tasks, expecting 201; the task as the answer shows it."""
    response = server.http.post("/tasks", json=body, headers=headers)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def task_of(server: Server, name: str) -> dict[str, Any]:
    response = server.http.get(f"/tasks/{name}")
    assert response.status_code == 200, response.text
    task: dict[str, Any] = response.json()
    return task


def run(
    server: Server, name: str, body: dict[str, Any] | None = None
) -> tuple[dict[str, Any], str]:
    """Run the task now and wait for it: its final record and its output."""
    # A run asked for in the very instant its environment's build ends can fail (a race in
    # Provisioner.wait, reported); runs that wait for a build are test_env_e2e's business.
    wait_until(lambda: task_of(server, name)["env"]["status"] != "building", BUILD_TIMEOUT)
    response = server.http.post(f"/tasks/{name}/run", json=body)
    assert response.status_code == 202, response.text
    done = server.finished(response.json()["id"])
    return done, server.http.get(f"/runs/{done['id']}/log").text


def runs_of(server: Server, name: str, trigger: str = "schedule") -> list[dict[str, Any]]:
    """The task's ended runs of one trigger, oldest first."""
    runs: list[dict[str, Any]] = server.http.get(f"/tasks/{name}/runs").json()
    ended = [r for r in runs if r["trigger"] == trigger and r["status"] not in LIVE]
    return ended[::-1]


def wait_fire(
    server: Server, name: str, after: datetime | None = None, timeout: float = 10.0
) -> dict[str, Any]:
    """The first ended scheduled run of the task (due after `after`), waiting for it."""

    def check() -> dict[str, Any] | None:
        for fire in runs_of(server, name):
            if after is None or datetime.fromisoformat(fire["scheduled_at"]) > after:
                return fire
        return None

    found: dict[str, Any] = wait_until(check, timeout=timeout)
    return found


def log_of(server: Server, run: dict[str, Any]) -> str:
    return server.http.get(f"/runs/{run['id']}/log").text


def rescan(server: Server) -> dict[str, Any]:
    response = server.http.post("/rescan")
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def test_command_runs_in_its_work_folder_with_args_env_and_its_exit_code(server: Server) -> None:
    script = 'pwd; echo "$GREETING" "$@"; exit "$CODE"'
    body = {
        "name": "greet",
        "description": "says hello",
        "command": ["sh", "-c", script, "sh"],
        "args": ["to", 3, True],
        "env": {"GREETING": "hello", "CODE": "0"},
    }
    created = define(server, body)
    work = server.data_dir / "work" / "greet"
    assert (created["source"], created["description"]) == ("api", "says hello")
    assert created["folder"] == str(work)
    shown = task_of(server, "greet")
    assert shown["source"] == "api"
    assert shown["definition"] == body
    assert shown["schedules"] == []

    done, log = run(server, "greet")
    assert (done["status"], done["exit_code"]) == ("succeeded", 0)
    assert log == f"{work}\nhello to 3 true\n"
    done, log = run(server, "greet", {"args": ["again"], "env": {"CODE": "3"}})
    assert (done["status"], done["exit_code"]) == ("failed", 3)
    assert log == f"{work}\nhello to 3 true again\n"

    define(server, {"name": "sleepy", "command": ["sleep", "30"], "timeout": 0.5})
    done, _ = run(server, "sleepy")
    assert done["status"] == "timed_out"
    define(server, {"name": "nowhere", "command": ["tasse-surely-no-such-program"]})
    done, _ = run(server, "nowhere")
    assert done["status"] == "failed"
    assert "tasse-surely-no-such-program" in done["error"]


def test_python_ref_prints_the_result_of_the_call(server: Server) -> None:
    define(
        server,
        {
            "name": "dumps",
            "python_ref": "json:dumps",
            "args": [{"b": 1, "a": [1, None]}],
            "kwargs": {"sort_keys": True},
        },
    )
    # A coroutine function is awaited: asyncio.sleep(0, result=...) returns its result.
    define(
        server,
        {"name": "nap", "python_ref": "asyncio:sleep", "args": [0], "kwargs": {"result": "woke"}},
    )
    define(server, {"name": "join", "python_ref": "os.path:join", "args": ["a"]})
    define(server, {"name": "quiet", "python_ref": "time:sleep", "args": [0]})
    define(server, {"name": "where", "python_ref": "os:getcwd"})

    done, log = run(server, "dumps")
    assert (done["status"], log) == ("succeeded", '{"a": [1, null], "b": 1}\n')
    done, log = run(server, "nap")
    assert (done["status"], log) == ("succeeded", "woke\n")
    done, log = run(server, "join", {"args": ["b", "c"]})  # a manual run's args come after
    assert (done["status"], log) == ("succeeded", "a/b/c\n")
    done, log = run(server, "quiet")  # None is not printed
    assert (done["status"], done["exit_code"], log) == ("succeeded", 0, "")
    done, log = run(server, "where")
    assert (done["status"], log) == ("succeeded", f"{server.data_dir / 'work' / 'where'}\n")


def test_python_ref_exceptions_fail_the_run_with_the_traceback(server: Server) -> None:
    define(server, {"name": "badjson", "python_ref": "json:loads", "args": ["{oops"]})
    # asyncio.sleep("soon") raises only once awaited, inside the coroutine.
    define(server, {"name": "badsleep", "python_ref": "asyncio:sleep", "args": ["soon"]})
    done, log = run(server, "badjson")
    assert (done["status"], done["exit_code"]) == ("failed", 1)
    assert log.startswith("Traceback (most recent call last):")
    assert "json.decoder.JSONDecodeError: Expecting property name" in log
    done, log = run(server, "badsleep")
    assert (done["status"], done["exit_code"]) == ("failed", 1)
    assert "Traceback (most recent call last):" in log
    assert log.rstrip().splitlines()[-1].startswith("TypeError:")


def test_python_ref_runs_in_an_environment_built_from_its_requirements(server: Server) -> None:
    define(server, {"name": "bare", "python_ref": "six:ensure_str", "args": ["x"]})
    define(
        server,
        {
            "name": "withsix",
            "python_ref": "six:ensure_str",
            "args": ["from six"],
            "requirements": ["six"],
            "python": THIS_PYTHON,
        },
    )

    def ready() -> dict[str, Any] | None:
        env: dict[str, Any] = task_of(server, "withsix")["env"]
        assert env["status"] != "failed", env["error"]
        return env if env["status"] == "ready" else None

    env = wait_until(ready, timeout=BUILD_TIMEOUT)
    assert env["requirements"] == ["six"]
    assert f"cpython {THIS_PYTHON}" in env["python"]
    assert installed_six(env["path"])  # really installed there

    done, log = run(server, "withsix")
    assert (done["status"], log) == ("succeeded", "from six\n")
    # Without requirements the environment is bare: neither six nor Tasse's own packages.
    done, log = run(server, "bare")
    assert done["status"] == "failed"
    assert "ModuleNotFoundError: No module named 'six'" in log


def test_task_reference_runs_the_target_code_with_its_own_args_params_and_schedule(
    server: Server,
) -> None:
    folder = server.task(
        "report",
        None,
        script="""
        import os, sys
        who, trigger = os.environ.get("TASSE_PARAM_WHO"), os.environ["TASSE_TRIGGER"]
        print(sys.argv[1:], who, os.getcwd(), trigger)
        """,
    )
    rescan(server)
    body = {"name": "weekly", "task": "report", "args": ["--weekly", 7], "params": {"who": "Ada"}}
    created = define(server, body)
    assert created["definition"] == body

    done, log = run(server, "weekly", {"args": ["--now"], "params": {"who": "Bob"}})
    assert done["status"] == "succeeded", log
    assert log == f"['--weekly', '7', '--now'] Bob {folder} manual\n"

    patched = server.http.patch("/tasks/weekly", json={"schedule": EVERY_SECOND})
    assert patched.status_code == 200, patched.text
    assert patched.json()["next_run_at"] is not None
    fire = wait_fire(server, "weekly")
    assert fire["status"] == "succeeded"
    assert log_of(server, fire) == f"['--weekly', '7'] Ada {folder} schedule\n"

    # The target keeps its own arguments, parameters and (no) schedule.
    assert runs_of(server, "report") == []
    done, log = run(server, "report")
    assert log == f"[] None {folder} manual\n"

    # A task defined through the API can be the target too: the args become arguments.
    define(server, {"name": "joiner", "python_ref": "os.path:join", "args": ["a"]})
    define(server, {"name": "joinmore", "task": "joiner", "args": ["b", 3]})
    done, log = run(server, "joinmore", {"args": ["c"]})
    assert (done["status"], log) == ("succeeded", "a/b/3/c\n")


def test_reference_to_a_missing_task_fails_with_the_reason_until_it_exists(
    server: Server,
) -> None:
    define(server, {"name": "orphan", "task": "ghost", "schedule": EVERY_SECOND})
    refused = server.http.post("/tasks/orphan/run")
    assert refused.status_code == 409
    assert "'ghost', which does not exist" in refused.json()["detail"]

    fire = wait_fire(server, "orphan")
    assert (fire["status"], fire["started_at"]) == ("failed", None)
    assert "'ghost', which does not exist" in fire["error"]

    server.task("ghost", None, script="print('boo')")
    rescan(server)
    appeared = datetime.now(UTC)
    fire = wait_fire(server, "orphan", after=appeared)
    assert fire["status"] == "succeeded"
    assert log_of(server, fire) == "boo\n"

    define(server, {"name": "chain", "task": "orphan"})
    refused = server.http.post("/tasks/chain/run")
    assert refused.status_code == 409
    assert "only refers to another" in refused.json()["detail"]


def test_definitions_survive_a_restart_on_the_sqlite_store(server: Server) -> None:
    define(
        server,
        {
            "name": "kept",
            "command": ["sh", "-c", "echo tick"],
            "schedule": EVERY_SECOND,
            "description": "first",
        },
    )
    assert server.http.patch("/tasks/kept", json={"description": "patched"}).status_code == 200
    define(server, {"name": "gone", "command": ["true"]})
    assert server.http.delete("/tasks/gone").status_code == 204
    before = task_of(server, "kept")["definition"]
    assert before["description"] == "patched"
    wait_fire(server, "kept")

    code, output = server.stop()
    assert code == 0, output
    assert (server.data_dir / "tasse.db").is_file()
    restarted = datetime.now(UTC)
    server.start()

    kept = task_of(server, "kept")
    assert (kept["source"], kept["definition"]) == ("api", before)
    assert (kept["description"], kept["schedules"]) == ("patched", [EVERY_SECOND])
    assert kept["next_run_at"] is not None
    assert server.http.get("/tasks/gone").status_code == 404
    # Fire times due while it was down are recorded missed (one caught up); then it runs.
    wait_until(lambda: any(r["status"] == "succeeded" for r in _fires_since(server, restarted)))
    fires = _fires_since(server, restarted)
    missed = [r for r in fires if r["status"] == "missed"]
    assert all("the server was down" in r["error"] for r in missed), missed
    fire = next(r for r in fires if r["status"] == "succeeded")
    assert log_of(server, fire) == "tick\n"


def _fires_since(server: Server, moment: datetime) -> list[dict[str, Any]]:
    return [
        r for r in runs_of(server, "kept") if datetime.fromisoformat(r["scheduled_at"]) > moment
    ]


def test_a_memory_store_keeps_no_definitions(start_server: StartServer) -> None:
    server = start_server("--store-address", "memory://")
    define(server, {"name": "fleeting", "command": ["echo", "here"]})
    done, log = run(server, "fleeting")
    assert (done["status"], log) == ("succeeded", "here\n")
    code, output = server.stop()
    assert code == 0, output
    assert not (server.data_dir / "tasse.db").exists()
    server.start()
    assert server.http.get("/tasks/fleeting").status_code == 404
    assert server.http.get("/tasks").json() == []


def test_patch_merges_keys_and_put_replaces_the_whole_definition(server: Server) -> None:
    body = {
        "name": "job",
        "command": ["sh", "-c", 'echo "who=$WHO"'],
        "description": "d1",
        "env": {"WHO": "Ada"},
        "schedule": "0 9 * * *",
        "timezone": "Asia/Tokyo",
        "timeout": 30,
    }
    define(server, body)
    [first] = server.http.get("/tasks/job/next", params={"count": 1}).json()
    assert datetime.fromisoformat(first).astimezone(UTC).strftime("%H:%M") == "00:00"

    patched = server.http.patch("/tasks/job", json={"description": "d2", "env": None})
    assert patched.status_code == 200, patched.text
    without_env = {k: v for k, v in body.items() if k != "env"}
    assert patched.json()["definition"] == {**without_env, "description": "d2"}
    assert (patched.json()["schedules"], patched.json()["next_run_at"]) == (["0 9 * * *"], first)
    done, log = run(server, "job")
    assert (done["status"], log) == ("succeeded", "who=\n")

    broken = server.http.patch("/tasks/job", json={"schedule": "61 9 * * *"})
    assert broken.status_code == 422
    assert "schedule" in broken.json()["detail"]
    assert "61" in broken.json()["detail"]
    assert task_of(server, "job")["definition"] == {**without_env, "description": "d2"}

    replaced = server.http.put("/tasks/job", json={"command": ["echo", "replaced"]})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["definition"] == {"name": "job", "command": ["echo", "replaced"]}
    assert (replaced.json()["description"], replaced.json()["schedules"]) == ("", [])
    assert replaced.json()["next_run_at"] is None
    done, log = run(server, "job")
    assert (done["status"], log) == ("succeeded", "replaced\n")

    assert server.http.put("/tasks/fresh", json={"command": ["true"]}).status_code == 201
    assert server.http.put("/tasks/fresh", json={"command": ["false"]}).status_code == 200
    assert task_of(server, "fresh")["command"] == ["false"]
    assert server.http.patch("/tasks/nope", json={"description": "x"}).status_code == 404
    assert server.http.delete("/tasks/nope").status_code == 404
    renamed = server.http.put("/tasks/fresh", json={"name": "other", "command": ["true"]})
    assert renamed.status_code == 422
    assert "name" in renamed.json()["detail"]


def test_delete_unschedules_and_lets_a_live_run_finish(server: Server) -> None:
    ticker = {"name": "ticker", "command": ["sh", "-c", "echo tick"], "schedule": EVERY_SECOND}
    define(server, ticker)
    wait_fire(server, "ticker")
    define(server, {"name": "long", "command": ["sh", "-c", "sleep 1; echo finished"]})
    live = server.http.post("/tasks/long/run").json()

    for name in ("ticker", "long"):
        deleted = server.http.delete(f"/tasks/{name}")
        assert deleted.status_code == 204
        assert deleted.content == b""
        assert server.http.get(f"/tasks/{name}").status_code == 404
        assert server.http.delete(f"/tasks/{name}").status_code == 404
        assert server.http.post(f"/tasks/{name}/run").status_code == 404
    done = server.finished(live["id"])
    assert done["status"] == "succeeded"
    assert log_of(server, done) == "finished\n"

    task_log = server.data_dir / "logs" / "ticker" / "log.txt"
    time.sleep(0.3)  # a fire that came due just before the DELETE ends
    ticks = task_log.read_text().count("tick")
    time.sleep(1.5)  # a second-by-second schedule would have fired at least once
    assert task_log.read_text().count("tick") == ticks
    assert all(t["name"] != "ticker" for t in server.http.get("/tasks").json())


def test_folder_tasks_are_read_only_through_the_api(server: Server) -> None:
    folder = server.task("hello", None)
    rescan(server)
    attempts = [
        server.http.put("/tasks/hello", json={"command": ["echo", "hijacked"]}),
        server.http.patch("/tasks/hello", json={"description": "hijacked"}),
        server.http.delete("/tasks/hello"),
    ]
    for refused in attempts:
        assert refused.status_code == 409, refused.request.method
        assert "edit the folder" in refused.json()["detail"]
        assert str(folder) in refused.json()["detail"]
    taken = server.http.post("/tasks", json={"name": "hello", "command": ["echo", "hijacked"]})
    assert taken.status_code == 409
    assert "exists already" in taken.json()["detail"]

    shown = task_of(server, "hello")
    assert (shown["source"], shown["definition"], shown["description"]) == ("folder", None, "")
    assert folder.is_dir()
    done, log = run(server, "hello")
    assert (done["status"], log) == ("succeeded", "Hello world\n")

    define(server, {"name": "mine", "command": ["echo", "first"]})
    again = server.http.post("/tasks", json={"name": "mine", "command": ["echo", "second"]})
    assert again.status_code == 409
    assert "exists already" in again.json()["detail"]
    assert task_of(server, "mine")["command"] == ["echo", "first"]


def test_a_folder_named_like_an_api_task_is_reported_until_that_task_is_deleted(
    server: Server,
) -> None:
    define(server, {"name": "clash", "command": ["echo", "from the api"]})
    folder = server.task("clash", None, script="print('from the folder')")

    for restart in (False, True):
        if restart:  # the stored definition still wins over the folder
            code, output = server.stop()
            assert code == 0, output
            server.start()
        error = rescan(server)["errors"]["clash (folder)"]
        assert "is not loaded: a task of that name is defined by the api" in error
        assert server.http.get("/health").json()["errors"] == 1
        assert task_of(server, "clash")["source"] == "api"
        done, log = run(server, "clash")
        assert log == "from the api\n"

    assert server.http.delete("/tasks/clash").status_code == 204
    shown = task_of(server, "clash")  # loaded at once, not at the next rescan
    assert (shown["source"], shown["folder"]) == ("folder", str(folder))
    done, log = run(server, "clash")
    assert (done["status"], log) == ("succeeded", "from the folder\n")
    assert rescan(server)["errors"] == {}


def test_reboot_fires_once_at_start_for_tasks_present_then(
    start_server: StartServer, tmp_path: Path
) -> None:
    boot = tmp_path / "data" / "tasks" / "boot"
    boot.mkdir(parents=True)
    (boot / "task.yaml").write_text('schedules: ["@reboot"]\n')
    (boot / "task.py").write_text("print('booted')\n")
    server = start_server()
    first = wait_fire(server, "boot")
    assert (first["status"], log_of(server, first)) == ("succeeded", "booted\n")

    # Added while the server runs: they fire at the next start, not now.
    define(server, {"name": "apiboot", "command": ["echo", "api booted"], "schedule": "@reboot"})
    server.task("lateboot", 'schedule: "@reboot"\n', script="print('late booted')")
    rescan(server)
    assert task_of(server, "apiboot")["next_run_at"] is None
    assert server.http.get("/tasks/apiboot/next").json() == []
    names = ("boot", "apiboot", "lateboot")
    time.sleep(1.5)
    assert [len(runs_of(server, name)) for name in names] == [1, 0, 0]

    code, output = server.stop()
    assert code == 0, output
    server.start()
    expected = dict(zip(names, (2, 1, 1), strict=True))
    wait_until(lambda: all(len(runs_of(server, n)) >= count for n, count in expected.items()))
    time.sleep(1.5)  # and no second fire
    fires = {name: runs_of(server, name) for name in names}
    assert {name: len(fires[name]) for name in names} == expected
    for name, printed in zip(names, ("booted", "api booted", "late booted"), strict=True):
        assert fires[name][-1]["status"] == "succeeded"
        assert log_of(server, fires[name][-1]) == f"{printed}\n"


def test_cli_next_says_reboot_fires_when_the_server_starts(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tasse", "next", "@reboot", "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # no clock time of its own
    assert "fires once each time the server starts" in result.stderr


def test_a_token_guards_defining_changing_and_deleting(start_server: StartServer) -> None:
    server = start_server(TASSE_API_TOKEN="s3cret")
    auth = {"Authorization": "Bearer s3cret"}
    body = {"name": "guarded", "command": ["echo", "v1"]}
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        refused = server.http.post("/tasks", json=body, headers=headers)
        assert refused.status_code == 401
        assert "Bearer" in refused.json()["detail"]
    assert server.http.get("/tasks/guarded").status_code == 404
    define(server, body, **auth)

    changes = [
        ("PUT", {"command": ["echo", "v2"]}),
        ("PATCH", {"description": "changed"}),
        ("DELETE", None),
    ]
    for method, change in changes:
        refused = server.http.request(method, "/tasks/guarded", json=change)
        assert refused.status_code == 401, method
    assert task_of(server, "guarded")["definition"] == body  # reading needs no token
    for (method, change), status in zip(changes, (200, 200, 204), strict=True):
        accepted = server.http.request(method, "/tasks/guarded", json=change, headers=auth)
        assert accepted.status_code == status, accepted.text
    assert server.http.get("/tasks/guarded").status_code == 404


#: definitions that must be refused (422, the problem named) and never stored or scheduled
INVALID: dict[str, tuple[Any, list[str]]] = {
    "nothing to run": ({}, ["exactly one of command, python_ref, task or sql"]),
    "two things to run": (
        {"command": ["true"], "python_ref": "json:dumps"},
        ["got command and python_ref"],
    ),
    "bad crontab field": ({"command": ["true"], "schedule": "61 * * * *"}, ["schedule", "61"]),
    "crontab of 4 fields": ({"command": ["true"], "schedules": ["*/5 * * *"]}, ["schedules"]),
    "bad cron mapping": (
        {"command": ["true"], "scheduler": {"trigger": "cron", "hour": 25}},
        ["scheduler", "hour"],
    ),
    "unknown key": ({"command": ["true"], "colour": "red"}, ["colour"]),
    "kwargs without python_ref": ({"command": ["true"], "kwargs": {"a": 1}}, ["kwargs"]),
    "refers to itself": ({"task": "bad"}, ["refer to itself"]),
    "object as a command arg": ({"command": ["echo"], "args": [{"a": 1}]}, ["args"]),
    "null as a command arg": ({"command": ["echo"], "args": [None]}, ["args"]),
    "bad requirement line": (
        {"python_ref": "json:dumps", "requirements": ["six >>> 1"]},
        ["requirements", "six >>> 1"],
    ),
    "task reference with requirements": ({"task": "x", "requirements": ["six"]}, ["requirements"]),
    "python_ref without function": ({"python_ref": "json"}, ["python_ref"]),
    "empty command": ({"command": []}, ["command"]),
    "unknown time zone": ({"command": ["true"], "timezone": "Mars/Base"}, ["timezone"]),
    "entrypoint": ({"command": ["true"], "entrypoint": "task.py"}, ["entrypoint"]),
    "bad python version": ({"command": ["true"], "python": "banana"}, ["python", "banana"]),
    "bad param name": ({"command": ["true"], "params": {"bad name": "x"}}, ["params"]),
    "unknown overlap": ({"command": ["true"], "overlap": "sometimes"}, ["overlap"]),
    "negative retries": ({"command": ["true"], "retries": -1}, ["retries"]),
    "not an object": ([1], []),
}


def said(detail: str | list[dict[str, Any]]) -> str:
    """What a 422 says, without the echo of the body (which names every key given)."""
    if isinstance(detail, str):
        return detail
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in detail)


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_definitions_are_422_naming_the_problem(
    shared_server: Server, case: str, method: str
) -> None:
    body, named = INVALID[case]
    if isinstance(body, dict) and method == "POST":
        body = {"name": "bad", **body}
    path = "/tasks" if method == "POST" else "/tasks/bad"
    response = shared_server.http.request(method, path, json=body)
    assert response.status_code == 422, response.text
    problem = said(response.json()["detail"])
    for word in named:
        assert word in problem
    assert shared_server.http.get("/tasks/bad").status_code == 404


def test_secret_looking_values_are_masked_in_answers_but_reach_the_run(server: Server) -> None:
    shown = define(
        server,
        {
            "name": "deploy",
            "command": ["sh", "-c", 'echo "$API_TOKEN/$DB_PASSWORD/$REGION"'],
            "env": {"API_TOKEN": "t0ps3cret", "DB_PASSWORD": "hunter2", "REGION": "eu"},
        },
    )
    assert shown["definition"]["env"] == {"API_TOKEN": "***", "DB_PASSWORD": "***", "REGION": "eu"}
    assert "t0ps3cret" not in server.http.get("/tasks").text

    # Read back, changed, sent again: the masked values keep what was stored.
    body = {**task_of(server, "deploy")["definition"], "description": "edited"}
    assert server.http.put("/tasks/deploy", json=body).status_code == 200
    done, output = run(server, "deploy")
    assert done["status"] == "succeeded", output
    assert output.strip() == "t0ps3cret/hunter2/eu"


def test_api_tasks_take_policies_a_failing_command_is_retried(server: Server) -> None:
    shown = define(
        server,
        {
            "name": "shaky",
            "command": ["sh", "-c", 'echo "attempt $TASSE_ATTEMPT"; exit 4'],
            "retries": 2,
            "retry_delay": 0.1,
            "overlap": "queue",
        },
    )
    assert shown["definition"]["retries"] == 2
    assert shown["definition"]["overlap"] == "queue"
    first, output = run(server, "shaky")
    assert (first["status"], first["attempt"], output) == ("failed", 1, "attempt 1\n")
    retries = wait_until(lambda: (found := runs_of(server, "shaky", "retry"))[1:] and found)
    assert [(r["attempt"], r["status"], r["exit_code"]) for r in retries] == [
        (2, "failed", 4),
        (3, "failed", 4),
    ]
    assert log_of(server, retries[1]) == "attempt 3\n"
    failed = server.http.get("/tasks/shaky/runs", params={"status": "failed"}).json()
    assert len(failed) == 3


def test_a_huge_bad_value_is_not_echoed_whole(shared_server: Server) -> None:
    body = {"name": "bad", "command": ["true"], "timezone": "Mars/" + "x" * 500_000}
    response = shared_server.http.post("/tasks", json=body)
    assert response.status_code == 422, response.text[:500]
    assert "timezone" in said(response.json()["detail"])
    assert len(response.content) < 2000
