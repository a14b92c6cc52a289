"""`tasse logs`, `runs`, `status` and `list` as a person types them: against a real running
server with real runs, and reading the data folder once the server is stopped."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StartServer
from tests.http.test_api import Server, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

#: prints a line, waits for the test's gate file, prints another and fails with code 3
GATED = """\
import os, sys, time
print("first line", flush=True)
deadline = time.monotonic() + 30
while not os.path.exists("gate") and time.monotonic() < deadline:
    time.sleep(0.05)
print("second line", flush=True)
sys.exit(3)
"""


def tasse(server: Server, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The command, pointed at the server's data folder, finding the server by itself."""
    return subprocess.run(
        [sys.executable, "-m", "tasse", *args, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **_listening(server), **env},
    )


def _listening(server: Server) -> dict[str, str]:
    # The address the server holding the folder listens at, as settings give it.
    return {"TASSE_HTTP_LISTEN_ADDRESS": f"127.0.0.1:{server.port}", "NO_COLOR": ""}


def run_now(server: Server, name: str) -> str:
    answer = server.http.post(f"/tasks/{name}/run")
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["id"]
    return run_id


def follow_gated(server: Server, run_id: str, *flags: str, **env: str) -> None:
    """`tasse logs gated -f`: the first line arrives while the run waits; it ends with it."""
    command = [sys.executable, "-m", "tasse", "logs", "gated", "-f", *flags]
    follower = subprocess.Popen(
        [*command, "--data-dir", str(server.data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **_listening(server), **env},
    )
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == "first line\n"
        # Still running: the line came live, not after the end.
        assert server.http.get(f"/runs/{run_id}").json()["status"] == "running"
        assert follower.poll() is None
        (server.data_dir / "tasks" / "gated" / "gate").touch()
        rest, errors = follower.communicate(timeout=30)
    finally:
        follower.kill()
        follower.wait()
        (server.data_dir / "tasks" / "gated" / "gate").unlink(missing_ok=True)
    assert rest == "second line\n"
    assert follower.returncode == 1  # the run failed: so does following it
    assert f"run {run_id}: failed (exited with code 3: second line)" in errors


def test_logs_follow_the_live_log_and_end_with_the_run(start_server: StartServer) -> None:
    server = start_server()
    server.task("gated", None, GATED)
    wait_until(lambda: server.http.get("/tasks/gated").status_code == 200)

    # Through the API's live stream, the server found through the folder's lock.
    run_id = run_now(server, "gated")
    follow_gated(server, run_id)
    # The server holding the folder listens elsewhere than settings say: the log file is
    # followed, and the store tells when the run ends.
    run_id = run_now(server, "gated")
    follow_gated(server, run_id, TASSE_HTTP_LISTEN_ADDRESS="127.0.0.1:9")

    shown = tasse(server, "logs", "gated", "--run", run_id)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == "first line\nsecond line\n"
    as_json = json.loads(tasse(server, "logs", "gated", "--json").stdout)
    assert as_json["log"] == shown.stdout
    assert as_json["run"]["id"] == run_id


def test_runs_status_and_list_from_the_server_and_from_the_data_folder(
    start_server: StartServer, tmp_path: Path
) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text("- name: seeded\n  command: [echo, seeded]\n  schedules: ['0 4 * * *']\n")
    server = start_server("--pre-seed-jobs", str(seed))
    server.task("good", "schedules: ['*/5 * * * *']\n", 'print("ok")')
    server.task("flaky", None, "import sys; print('oops'); sys.exit(2)")
    server.task("broken", "scheduler: {trigger: interval, secondz: 5}\n")
    made = server.http.post("/tasks", json={"name": "api-echo", "command": ["echo", "hi"]})
    assert made.status_code == 201, made.text
    wait_until(lambda: len(server.http.get("/tasks").json()) == 5)
    ran = [server.finished(run_now(server, name)) for name in ("good", "flaky", "good")]

    online = _observed(server)
    runs = json.loads(online["runs"].stdout)
    assert [run["id"] for run in runs] == [ran[2]["id"], ran[0]["id"]]  # newest first
    table = online["runs table"].stdout.splitlines()
    assert table[0].split() == ["ID", "TRIGGER", "STATUS", "STARTED", "DURATION", "EXIT", "ERROR"]
    assert table[1].split()[:3] == [ran[2]["id"], "manual", "succeeded"]
    assert table[1].split()[-1] == "0"  # the exit code; no error
    failed = online["failed runs"].stdout.splitlines()
    assert len(failed) == 2
    assert failed[1].split()[:3] == [ran[1]["id"], "manual", "failed"]
    assert failed[1].endswith("exited with code 2: oops")

    status = {task["name"]: task for task in json.loads(online["status"].stdout)}
    assert status["broken"]["state"] == "broken"
    assert "secondz" in status["broken"]["error"]
    assert (status["flaky"]["state"], status["flaky"]["last_run"]["exit_code"]) == ("failed", 2)
    assert status["good"]["last_run"]["id"] == ran[2]["id"]
    assert status["good"]["next_run_at"] is not None
    lines = online["status table"].stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "LAST", "RUN", "LAST", "AT", "TOOK", "NEXT", "RUN"]
    assert any(line.startswith("broken:") and "secondz" in line for line in lines)
    assert "\x1b[" not in online["status table"].stdout  # no colour into a pipe

    sources = {task["name"]: task["source"] for task in json.loads(online["list"].stdout)}
    assert sources == {
        "api-echo": "api",
        "broken": "folder",
        "flaky": "folder",
        "good": "folder",
        "seeded": "seed",
    }
    rows = {line.split()[0]: line.split() for line in online["list table"].stdout.splitlines()}
    assert rows["seeded"][1:7] == ["seed", "0", "4", "*", "*", "*"]
    assert rows["api-echo"][1:4] == ["api", "on", "demand"]

    code, output = server.stop()
    assert code == 0, output
    offline = _observed(server)
    assert "no server runs on" in offline["runs"].stderr
    # The same answers from the store and the folders as the server gave.
    for command in ("runs", "runs table", "failed runs", "list table"):
        assert offline[command].stdout == online[command].stdout, command
    assert _without_next(offline["status"]) == _without_next(online["status"])
    assert _without_next(offline["list"]) == _without_next(online["list"])
    logs = tasse(server, "logs", "flaky")
    assert (logs.returncode, logs.stdout) == (0, "oops\n")
    assert f"run {ran[1]['id']}: failed (exited with code 2: oops)" in logs.stderr


def _observed(server: Server) -> dict[str, subprocess.CompletedProcess[str]]:
    """Each reading command's answer, all asked the same way."""
    commands = {
        "runs": ["runs", "good", "--json"],
        "runs table": ["runs", "good"],
        "failed runs": ["runs", "flaky", "--status", "failed", "-n", "5"],
        "status": ["status", "--json"],
        "status table": ["status"],
        "list": ["list", "--json"],
        "list table": ["list"],
    }
    answers = {name: tasse(server, *argv) for name, argv in commands.items()}
    for name, answer in answers.items():
        assert answer.returncode == 0, (name, answer.stderr)
    return answers


def _without_next(answer: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    # Where an interval counts from is the server's; everything else must agree.
    tasks: list[dict[str, Any]] = json.loads(answer.stdout)
    return [{k: v for k, v in task.items() if k != "next_run_at"} for task in tasks]


def test_status_paints_broken_tasks_on_a_terminal_only(start_server: StartServer) -> None:
    server = start_server()
    server.task("fine", None)
    server.task("broken", "scheduler: {trigger: interval, secondz: 5}\n")
    wait_until(lambda: len(server.http.get("/tasks").json()) == 2)
    painted = _on_a_terminal(server, "status")
    broken_row = next(line for line in painted.splitlines() if "broken" in line)
    assert broken_row.startswith("\x1b[31;1mbroken")
    assert "\x1b[" not in _on_a_terminal(server, "status", NO_COLOR="1")


def _on_a_terminal(server: Server, *args: str, **env: str) -> str:
    """What the command prints to a terminal (a pseudo-terminal of the test's)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "tasse", *args, "--data-dir", str(server.data_dir)],
        stdout=follower,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **_listening(server), **env},
    )
    os.close(follower)
    output = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the command ended and closed its side
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert process.wait(timeout=30) == 0
    return output.decode().replace("\r\n", "\n")


def test_errors_are_one_line_and_fail(start_server: StartServer) -> None:
    server = start_server()
    unknown = tasse(server, "runs", "ghost")
    assert unknown.returncode == 1
    assert (
        unknown.stderr.strip().splitlines()[-1].startswith("tasse: No task by the name of 'ghost'")
    )
    silent = tasse(server, "status", "--url", "http://127.0.0.1:9")
    assert silent.returncode == 1
    assert (
        silent.stderr
        == "tasse: no server answers at http://127.0.0.1:9 ([Errno 111] Connection refused)\n"
    )
    server.task("idle", None)
    wait_until(lambda: server.http.get("/tasks/idle").status_code == 200)
    never = tasse(server, "logs", "idle")
    assert never.returncode == 1
    assert "task 'idle' has no runs yet" in never.stderr
    other = tasse(server, "logs", "idle", "--run", "20200101-000000-000000-abcdef")
    assert other.returncode == 1
    assert "No run by the id of '20200101-000000-000000-abcdef'" in other.stderr
