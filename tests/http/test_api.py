"""End to end: a real `tasse serve` process, real HTTP, real task processes and files."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ports import free_port


def wait_until(check: Callable[[], Any], timeout: float = 10.0, every: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy; fail with its last value otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, f"still {value!r} after {timeout} s"
            return value
        time.sleep(every)


class Server:
    """A `tasse serve` subprocess on a free port, stopped with SIGTERM like a container."""

    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, flags: list[str] | None = None
    ):
        self.data_dir = data_dir
        self.env = env or {}
        self.flags = flags or []
        self.listen_host = "127.0.0.1"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        #: run in the server's process before it starts (resource limits)
        self.preexec: Callable[[], None] | None = None
        self.output = data_dir.parent / "server.log"
        #: what the command line starts with (`ip netns exec NAME`: in a network namespace)
        self.prefix: list[str] = []
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)

    def start(self, timeout: float = 20) -> None:
        env = {**os.environ, "TASSE_KILL_GRACE": "1", "TASSE_DEBOUNCE": "0.05", **self.env}
        # Output goes to a file: a pipe nobody reads would fill up and stall the server.
        with self.output.open("ab") as output:
            self.process = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", "tasse", *self.arguments()],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                preexec_fn=self.preexec,
            )
        wait_until(self._healthy, timeout=timeout)

    def arguments(self) -> list[str]:
        """The command line after `tasse`."""
        listen = f"{self.listen_host}:{self.port}"
        return [
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--http-listen-address",
            listen,
            *self.flags,
        ]

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"server exited: {self.output.read_text()}")
        try:
            return self.http.get("/health").status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> tuple[int, str]:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=20)
        # Connections to the stopped server are dead; start afresh for the next one.
        self.http.close()
        self.http = httpx.Client(base_url=self.http.base_url, timeout=10)
        return code, self.output.read_text()

    def task(self, name: str, yaml: str | None, script: str = 'print("Hello world")') -> Path:
        folder = self.data_dir / "tasks" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "task.py").write_text(textwrap.dedent(script))
        if yaml is not None:
            (folder / "task.yaml").write_text(textwrap.dedent(yaml))
        return folder

    def finished(self, run_id: str) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            run: dict[str, Any] = self.http.get(f"/runs/{run_id}").json()
            return run if run["status"] not in ("queued", "running") else None

        result: dict[str, Any] = wait_until(final, timeout=15)
        return result


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    (tmp_path / "data" / "tasks").mkdir(parents=True)
    running = Server(tmp_path / "data")
    running.start()
    yield running
    if running.process is not None and running.process.poll() is None:
        code, output = running.stop()
        assert code == 0, output
    running.http.close()


def test_readme_helloworld_is_scheduled_and_logs(server: Server) -> None:
    server.task("helloworld", "scheduler: {trigger: interval, seconds: 1}\n")
    log = server.data_dir / "logs" / "helloworld" / "log.txt"
    wait_until(lambda: log.exists() and "Hello world" in log.read_text(), timeout=10)
    # The line is written while the run is still running; its record follows at exit.
    task = wait_until(lambda: (t := server.http.get("/tasks/helloworld").json())["last_run"] and t)
    assert task["schedules"] == [{"trigger": "interval", "seconds": 1.0}]
    assert task["last_run"]["trigger"] == "schedule"


def test_manual_run_status_and_log(server: Server) -> None:
    server.task("helloworld", "scheduler: {trigger: interval, seconds: 3600}\n")
    wait_until(lambda: server.http.get("/tasks/helloworld").status_code == 200)
    response = server.http.post("/tasks/helloworld/run")
    assert response.status_code == 202
    run = response.json()
    assert set(run) >= {
        "id",
        "task",
        "trigger",
        "status",
        "exit_code",
        "scheduled_at",
        "started_at",
        "finished_at",
    }
    assert (run["task"], run["trigger"]) == ("helloworld", "manual")
    done = server.finished(run["id"])
    assert (done["status"], done["exit_code"]) == ("succeeded", 0)
    assert server.http.get(f"/runs/{run['id']}/log").text == "Hello world\n"
    history = server.http.get("/tasks/helloworld/runs").json()
    assert [r["id"] for r in history] == [run["id"]]


def test_manual_run_with_args_env_and_params(server: Server) -> None:
    server.task(
        "echo",
        None,
        script="""
        import os, sys
        print(sys.argv[1:], os.environ["GREETING"], os.environ["TASSE_PARAM_WHO"])
    """,
    )
    wait_until(lambda: server.http.get("/tasks/echo").status_code == 200)
    body = {"args": ["--loud"], "env": {"GREETING": "hi"}, "params": {"who": "Ada"}}
    run = server.http.post("/tasks/echo/run", json=body).json()
    assert server.finished(run["id"])["status"] == "succeeded"
    assert server.http.get(f"/runs/{run['id']}/log").text == "['--loud'] hi Ada\n"


def test_follow_streams_until_the_run_ends(server: Server) -> None:
    server.task(
        "slow",
        None,
        script="""
        import time
        for i in range(3):
            print("line", i)
            time.sleep(0.3)
    """,
    )
    wait_until(lambda: server.http.get("/tasks/slow").status_code == 200)
    run = server.http.post("/tasks/slow/run").json()
    started = time.monotonic()
    with server.http.stream("GET", f"/runs/{run['id']}/log", params={"follow": "true"}) as stream:
        body = "".join(stream.iter_text())
    assert body == "line 0\nline 1\nline 2\n"
    assert time.monotonic() - started >= 0.6  # it really waited for the live output
    assert server.http.get(f"/runs/{run['id']}").json()["status"] == "succeeded"


def test_cancel_and_conflicts(server: Server) -> None:
    server.task("sleeper", None, script="import time; print('zz', flush=True); time.sleep(60)")
    wait_until(lambda: server.http.get("/tasks/sleeper").status_code == 200)
    run = server.http.post("/tasks/sleeper/run").json()
    second = server.http.post("/tasks/sleeper/run")
    assert second.status_code == 409
    assert run["id"] in second.json()["detail"]
    cancelled = server.http.post(f"/runs/{run['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = server.http.post(f"/runs/{run['id']}/cancel")
    assert again.status_code == 409
    assert "already ended" in again.json()["detail"]


def test_next_fire_times(server: Server) -> None:
    server.task("every10", "scheduler: {trigger: interval, seconds: 10}\n")
    wait_until(lambda: server.http.get("/tasks/every10").status_code == 200)
    times = server.http.get("/tasks/every10/next", params={"count": 3}).json()
    parsed = [datetime.fromisoformat(t) for t in times]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(parsed)] == [10, 10]


def test_broken_task_is_reported_and_others_keep_running(server: Server) -> None:
    server.task("good", "scheduler: {trigger: interval, seconds: 3600}\n")
    server.task("bad", "scheduler: {trigger: cron, hour: 25}\n")
    report = server.http.post("/rescan").json()
    assert "task.yaml: scheduler.hour" in report["errors"]["bad"]
    bad = server.http.get("/tasks/bad").json()
    assert "scheduler.hour" in bad["error"]
    refused = server.http.post("/tasks/bad/run")
    assert refused.status_code == 409
    run = server.http.post("/tasks/good/run").json()
    assert server.finished(run["id"])["status"] == "succeeded"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/tasks/nope", None, 404),
        ("POST", "/tasks/nope/run", None, 404),
        ("GET", "/runs/20260101-000000-000000-abcdef", None, 404),
        ("GET", "/runs/..%2F..%2Fetc%2Fpasswd/log", None, 404),
        ("GET", "/tasks/hello/next?count=0", None, 422),
        ("POST", "/tasks/hello/run", {"argz": []}, 422),
        ("POST", "/tasks/hello/run", {"params": {"bad name": "x"}}, 422),
        ("POST", "/tasks/hello/run", {"params": "x"}, 422),
        ("GET", "/tasks/hello/runs?status=sleeping", None, 422),
    ],
)
def test_bad_requests_get_clear_4xx(
    server: Server, method: str, path: str, body: Any, status: int
) -> None:
    server.task("hello", None)
    wait_until(lambda: server.http.get("/tasks/hello").status_code == 200)
    response = server.http.request(method, path, json=body)
    assert response.status_code == status
    assert response.json()["detail"]


def test_invalid_json_body_is_422(server: Server) -> None:
    server.task("hello", None)
    wait_until(lambda: server.http.get("/tasks/hello").status_code == 200)
    response = server.http.post(
        "/tasks/hello/run", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_history_survives_a_restart(server: Server) -> None:
    server.task("hello", None)
    wait_until(lambda: server.http.get("/tasks/hello").status_code == 200)
    run = server.http.post("/tasks/hello/run").json()
    server.finished(run["id"])
    code, _ = server.stop()
    assert code == 0
    server.start()
    again = server.http.get(f"/runs/{run['id']}").json()
    assert again["status"] == "succeeded"
    assert server.http.get("/tasks/hello").json()["last_run"]["id"] == run["id"]


def test_sigterm_cancels_live_runs_and_exits_cleanly(server: Server) -> None:
    server.task("sleeper", None, script="import time; time.sleep(60)")
    wait_until(lambda: server.http.get("/tasks/sleeper").status_code == 200)
    run = server.http.post("/tasks/sleeper/run").json()
    code, output = server.stop()
    assert code == 0, output
    server.start()
    assert server.http.get(f"/runs/{run['id']}").json()["status"] == "cancelled"


def test_openapi_documents_the_routes(server: Server) -> None:
    paths = server.http.get("/openapi.json").json()["paths"]
    assert {"/health", "/tasks", "/tasks/{name}/run", "/runs/{run_id}/log", "/rescan"} <= set(paths)


def test_a_token_guards_the_routes_that_change_something(tmp_path: Path) -> None:
    (tmp_path / "data" / "tasks" / "hello").mkdir(parents=True)
    (tmp_path / "data" / "tasks" / "hello" / "task.py").write_text("print('hi')\n")
    guarded = Server(tmp_path / "data", env={"TASSE_API_TOKEN": "s3cret"})
    guarded.start()
    try:
        http = guarded.http
        assert http.get("/tasks/hello").status_code == 200  # reading needs no token
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            refused = http.post("/tasks/hello/run", headers=headers)
            assert refused.status_code == 401
            assert "Bearer" in refused.json()["detail"]
        assert http.post("/rescan").status_code == 401
        accepted = http.post("/tasks/hello/run", headers={"Authorization": "Bearer s3cret"})
        assert accepted.status_code == 202
        guarded.finished(accepted.json()["id"])
    finally:
        code, output = guarded.stop()
        guarded.http.close()
    assert code == 0, output
    assert "s3cret" not in output


def test_listening_beyond_loopback_without_a_token_warns(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    server.listen_host = "0.0.0.0"  # every interface; the test still talks over loopback
    server.start()
    code, output = server.stop()
    server.http.close()
    assert code == 0
    assert "WITHOUT AN API TOKEN" in output
