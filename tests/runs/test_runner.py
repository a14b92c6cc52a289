"""One run end to end: real subprocesses, their output in the log files, timeouts, cancel, env."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tasse.models import Run, RunRequest, RunStatus
from tasse.runs.logs import RunLogWriter
from tasse.runs.runner import Outcome, RunProcess
from tasse.service import Tasse
from tasse.store.log_files import LogLayout
from tasse.tasks.task import Task
from tests.conftest import MakeTask, stored

pytestmark = pytest.mark.anyio

#: settings fixture's kill_grace
KILL_GRACE = 1.0
#: extra time a loaded 2-core machine may need to start, stop and record a process
SLACK = 2.5


# -- helpers ---------------------------------------------------------------------------------


async def add_task(tasse: Tasse, make_task: MakeTask, name: str, *args: Any, **kwargs: Any) -> Task:
    """Create a task folder in a running Tasse and load it now (not after the watcher's delay)."""
    folder = make_task(name, *args, **kwargs)
    await tasse.rescan()
    entry = tasse.registry.entries[name]
    assert entry.error is None, entry.error
    assert entry.task is not None
    assert entry.task.folder == folder
    return entry.task


async def wait_final(tasse: Tasse, run_id: str, timeout: float = 10) -> Run:
    """Poll until the run has a final status; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (run := (await tasse.get_run(run_id))).status.is_final:
        assert time.monotonic() < deadline, f"run {run_id} still {run.status} after {timeout} s"
        await asyncio.sleep(0.02)
    return run


async def wait_for_output(tasse: Tasse, run_id: str, text: bytes, timeout: float = 10) -> bytes:
    """Poll the run's log until `text` shows up; return the log so far."""
    deadline = time.monotonic() + timeout
    while text not in (output := (await tasse.read_log(run_id))):
        assert time.monotonic() < deadline, f"{text!r} not in the output after {timeout} s"
        await asyncio.sleep(0.02)
    return output


async def run_task(
    tasse: Tasse, name: str, request: RunRequest | None = None, timeout: float = 10
) -> tuple[Run, bytes]:
    """Run a task now, wait for it to end; return the recorded run and its output."""
    started = tasse.run_now(name, request or RunRequest())
    run = await wait_final(tasse, started.id, timeout)
    return run, (await tasse.read_log(run.id))


def seconds(run: Run) -> float:
    """How long the run took, from its recorded times."""
    assert run.started_at is not None
    assert run.finished_at is not None
    return (run.finished_at - run.started_at).total_seconds()


def process_exists(pid: int) -> bool:
    """True while `pid` is a live process (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


async def wait_gone(pid: int, timeout: float = 3) -> bool:
    """Poll until `pid` is gone; False if it is still alive after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while process_exists(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def kill_quietly(pid: int) -> None:
    """Clean up a process a failed test may have left behind."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


@dataclass
class DirectRun:
    """What a RunProcess run gave, and whether the test had to give up waiting for it."""

    outcome: Outcome
    output: bytes
    #: seconds until the run ended (or until the test gave up)
    seconds: float
    #: the run did not end within its timeout + kill grace + slack
    hung: bool

    @property
    def pid(self) -> int:
        """The process id the script printed first."""
        return int(self.output.split()[0])


async def run_direct(tmp_path: Path, script: str, timeout: float | None) -> DirectRun:
    """Run a bash script through RunProcess alone; never hang the test suite."""
    writer = RunLogWriter(LogLayout(tmp_path / "logs"), "direct", "run-1")
    writer.open()
    process = RunProcess(["bash", "-c", script], tmp_path, os.environ, writer, timeout, KILL_GRACE)
    began = time.monotonic()
    try:
        await process.start()
        waiting = asyncio.ensure_future(process.wait())
        done, _ = await asyncio.wait({waiting}, timeout=(timeout or 0) + KILL_GRACE + SLACK)
        elapsed = time.monotonic() - began
        if not done:
            # Free the run by killing what the script reported, so the test can fail cleanly.
            for word in writer.path.read_bytes().split():
                kill_quietly(int(word))
        outcome = await waiting
    finally:
        writer.close()
    return DirectRun(outcome, writer.path.read_bytes(), elapsed, hung=not done)


# -- exit status -------------------------------------------------------------------------------


async def test_exit_zero_is_succeeded(tasse: Tasse, make_task: MakeTask) -> None:
    await add_task(tasse, make_task, "ok", script="print('fine')")
    run, output = await run_task(tasse, "ok")
    assert run.status is RunStatus.succeeded
    assert run.exit_code == 0
    assert run.error is None
    assert output == b"fine\n"
    assert (await stored(tasse, run.id)) == run


async def test_nonzero_exit_is_failed_with_the_code(tasse: Tasse, make_task: MakeTask) -> None:
    await add_task(tasse, make_task, "bad", script="import sys; sys.exit(3)")
    run, _ = await run_task(tasse, "bad")
    assert run.status is RunStatus.failed
    assert run.exit_code == 3
    assert run.error == "exited with code 3"  # it printed nothing


async def test_a_failure_is_named_by_the_last_line_it_printed(
    tasse: Tasse, make_task: MakeTask
) -> None:
    script = "print('working')\nprint('x' * 5000)\n1 / 0\n"
    await add_task(tasse, make_task, "crash", script=script)
    run, _ = await run_task(tasse, "crash")
    assert run.error == "exited with code 1: ZeroDivisionError: division by zero"
    await add_task(tasse, make_task, "long", script="import sys\nsys.exit('y' * 5000 + '\\n\\n')\n")
    run, _ = await run_task(tasse, "long")
    assert run.error is not None
    assert run.error.startswith("exited with code 1: yyy")
    assert len(run.error) == len("exited with code 1: ") + 200
    assert run.error.endswith("…")


# -- output ------------------------------------------------------------------------------------


async def test_stdout_and_stderr_are_both_captured(tasse: Tasse, make_task: MakeTask) -> None:
    script = """
        import sys
        print("to stdout")
        print("to stderr", file=sys.stderr)
        print("stdout again")
    """
    await add_task(tasse, make_task, "both", script=script)
    run, output = await run_task(tasse, "both")
    assert run.status is RunStatus.succeeded
    assert output == b"to stdout\nto stderr\nstdout again\n"


async def test_output_goes_to_the_run_log_and_the_task_log(
    tasse: Tasse, make_task: MakeTask, data_dir: Path
) -> None:
    await add_task(tasse, make_task, "lines", script="print('one'); print('two')")
    run, _ = await run_task(tasse, "lines")

    run_log = data_dir / "logs" / "lines" / "runs" / f"{run.id}.log"
    assert run_log.read_bytes() == b"one\ntwo\n"

    task_log = (data_dir / "logs" / "lines" / "log.txt").read_text().splitlines()
    output_lines = [line for line in task_log if line.endswith(("one", "two"))]
    assert len(output_lines) == 2
    for line, text in zip(output_lines, ["one", "two"], strict=True):
        stamp, run_id, rest = line.split(" ", 2)
        assert datetime.fromisoformat(stamp).utcoffset() is not None
        assert run_id == f"[{run.id}]"
        assert rest == text


async def test_a_last_line_without_newline_is_kept(
    tasse: Tasse, make_task: MakeTask, data_dir: Path
) -> None:
    script = "import sys; sys.stdout.write('first\\nno newline at the end')"
    await add_task(tasse, make_task, "partial", script=script)
    run, output = await run_task(tasse, "partial")
    assert output.startswith(b"first\nno newline at the end")
    task_log = (data_dir / "logs" / "partial" / "log.txt").read_text()
    assert f"[{run.id}] no newline at the end\n" in task_log


async def test_the_run_log_is_exactly_what_the_task_printed(
    tasse: Tasse, make_task: MakeTask
) -> None:
    await add_task(tasse, make_task, "raw", script="import sys; sys.stdout.write('a,b\\n1,2')")
    _, output = await run_task(tasse, "raw")
    assert output == b"a,b\n1,2"


# -- timeouts and stopping -----------------------------------------------------------------------


async def test_timeout_stops_a_sleeping_task(tasse: Tasse, make_task: MakeTask) -> None:
    await add_task(tasse, make_task, "slow", "timeout: 1", "import time; time.sleep(30)")
    run, _ = await run_task(tasse, "slow")
    assert run.status is RunStatus.timed_out
    assert run.error is not None
    assert "timeout" in run.error
    assert 1 <= seconds(run) < 1 + KILL_GRACE + SLACK


async def test_timeout_kills_a_task_that_ignores_sigterm(tmp_path: Path) -> None:
    ran = await run_direct(tmp_path, "trap '' TERM; echo ready; sleep 30", timeout=1)
    assert not ran.hung
    assert ran.outcome.status is RunStatus.timed_out
    assert ran.outcome.exit_code == -signal.SIGKILL
    assert ran.output == b"ready\n"
    assert 1 + KILL_GRACE - 0.1 <= ran.seconds < 1 + KILL_GRACE + SLACK


async def test_timeout_stops_the_whole_process_group(tasse: Tasse, make_task: MakeTask) -> None:
    script = """
        import subprocess, time
        child = subprocess.Popen(["sleep", "1000"])
        print(child.pid, flush=True)
        time.sleep(30)
    """
    await add_task(tasse, make_task, "spawner", "timeout: 1", script)
    started = tasse.run_now("spawner", RunRequest())
    pid = int(await wait_for_output(tasse, started.id, b"\n"))
    try:
        run = await wait_final(tasse, started.id)
        assert run.status is RunStatus.timed_out
        assert await wait_gone(pid), f"the task's child {pid} outlived the timeout"
    finally:
        kill_quietly(pid)


async def test_timeout_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    script = "bash -c \"trap '' TERM; sleep 1000\" >/dev/null 2>&1 & echo $!; sleep 30"
    ran = await run_direct(tmp_path, script, timeout=1)
    try:
        assert ran.outcome.status is RunStatus.timed_out
        assert await wait_gone(ran.pid, KILL_GRACE + 1), f"child {ran.pid} survived"
    finally:
        kill_quietly(ran.pid)


async def test_a_background_child_holding_the_output_does_not_hang_the_run(
    tmp_path: Path,
) -> None:
    ran = await run_direct(tmp_path, "sleep 1000 & echo $!; sleep 0.5", timeout=None)
    try:
        assert not ran.hung, "the run did not end while a background child held its output"
        assert ran.outcome.status is RunStatus.succeeded
        assert await wait_gone(ran.pid), f"background child {ran.pid} was left running"
    finally:
        kill_quietly(ran.pid)


async def test_cancel_stops_a_run(tasse: Tasse, make_task: MakeTask) -> None:
    await add_task(
        tasse, make_task, "long", script="import time; print('up', flush=True); time.sleep(30)"
    )
    started = tasse.run_now("long", RunRequest())
    await wait_for_output(tasse, started.id, b"up\n")
    began = time.monotonic()
    cancelled = await tasse.cancel_run(started.id)
    assert time.monotonic() - began < KILL_GRACE + SLACK
    assert cancelled.status is RunStatus.cancelled
    assert (await tasse.get_run(started.id)).status is RunStatus.cancelled
    assert (await stored(tasse, started.id)) is not None
    assert (await tasse.read_log(started.id)) == b"up\n"


# -- what the process sees ---------------------------------------------------------------------

ENV_REPORT = """
    import json, os, sys
    print(json.dumps({"env": dict(os.environ), "argv": sys.argv[1:], "cwd": os.getcwd()}))
"""

ENV_YAML = """
    args: [--verbose, 7]
    env:
      APP_PORT: 8080
      APP_RATIO: 0.5
      APP_DEBUG: true
      APP_URL: https://example.org
"""


@pytest.fixture
async def report(tasse: Tasse, make_task: MakeTask) -> tuple[Task, Run, dict[str, Any]]:
    """Run a task that prints its environment, argv and cwd, with a request that adds to them."""
    task = await add_task(tasse, make_task, "env", ENV_YAML, ENV_REPORT)
    request = RunRequest(
        args=["--extra", "two words"],
        env={"APP_REQUEST": "from-request", "APP_URL": "https://override.example"},
        params={"city": "Berlin"},
    )
    run, output = await run_task(tasse, "env", request)
    assert run.status is RunStatus.succeeded, output
    return task, run, json.loads(output)


async def test_the_run_sees_who_and_why(report: tuple[Task, Run, dict[str, Any]]) -> None:
    _, run, seen = report
    env = seen["env"]
    assert env["TASSE_TASK"] == "env"
    assert env["TASSE_RUN_ID"] == run.id
    assert env["TASSE_TRIGGER"] == "manual"
    scheduled = datetime.fromisoformat(env["TASSE_SCHEDULED_AT"])
    assert scheduled.utcoffset() is not None
    assert scheduled == run.scheduled_at


async def test_the_run_sees_task_and_request_env(report: tuple[Task, Run, dict[str, Any]]) -> None:
    env = report[2]["env"]
    assert env["APP_PORT"] == "8080"
    assert env["APP_RATIO"] == "0.5"
    assert env["APP_DEBUG"] == "true"
    assert env["APP_REQUEST"] == "from-request"
    assert env["APP_URL"] == "https://override.example"
    assert env["TASSE_PARAM_CITY"] == "Berlin"
    # The server's PATH, behind the task environment's bin (an activated virtualenv).
    venv_bin, _, rest = env["PATH"].partition(os.pathsep)
    assert rest == os.environ["PATH"]
    assert venv_bin == os.path.join(env["VIRTUAL_ENV"], "bin")


async def test_the_run_gets_task_args_then_request_args(
    report: tuple[Task, Run, dict[str, Any]],
) -> None:
    assert report[2]["argv"] == ["--verbose", "7", "--extra", "two words"]


async def test_the_run_works_in_its_task_folder(report: tuple[Task, Run, dict[str, Any]]) -> None:
    task, _, seen = report
    assert Path(seen["cwd"]).resolve() == task.folder.resolve()


async def test_task_sh_is_run_by_bash(tasse: Tasse, make_task: MakeTask) -> None:
    # `[[ ]]` and arrays exist in bash only; no exec bit is needed.
    script = 'words=(a b); [[ -n "$BASH_VERSION" ]] && echo "bash ${#words[@]}"\n'
    folder = make_task("shell", script=None, task__sh=script)
    assert not os.access(folder / "task.sh", os.X_OK)
    await tasse.rescan()
    run, output = await run_task(tasse, "shell")
    assert run.status is RunStatus.succeeded
    assert output == b"bash 2\n"


async def test_stdin_in_task_yaml_is_what_the_run_reads_then_end_of_input(
    tasse: Tasse, make_task: MakeTask
) -> None:
    make_task(
        "reader",
        'stdin: "first line\\nsecond line\\n"',
        script=None,
        task__sh='while read -r line; do echo "got: $line"; done; echo "end of input"\n',
    )
    make_task("no-input", script=None, task__sh="cat; echo done\n")
    await tasse.rescan()
    run, output = await run_task(tasse, "reader")
    assert run.status is RunStatus.succeeded
    assert output == b"got: first line\ngot: second line\nend of input\n"
    # Without `stdin:` a run reads /dev/null: it never waits for input that cannot come.
    run, output = await run_task(tasse, "no-input")
    assert (run.status, output) == (RunStatus.succeeded, b"done\n")


async def test_stdin_longer_than_one_pipe_write_is_refused_naming_the_key(
    tasse: Tasse, make_task: MakeTask
) -> None:
    make_task("flood", f"stdin: {'x' * 5000}", script=None, task__sh="cat\n")
    report = await tasse.rescan()
    assert "stdin" in report.errors["flood"]
    assert "4096 bytes" in report.errors["flood"]


async def test_python_task_runs_with_a_python_interpreter(
    tasse: Tasse, make_task: MakeTask
) -> None:
    await add_task(tasse, make_task, "py", script="import sys; print(sys.version_info[0])")
    _, output = await run_task(tasse, "py")
    assert output == f"{sys.version_info[0]}\n".encode()


async def test_an_unstartable_entrypoint_fails_clearly(tasse: Tasse, make_task: MakeTask) -> None:
    folder = make_task(
        "binary", "entrypoint: run.bin", script=None, run__bin="#!/bin/sh\necho hi\n"
    )
    assert not os.access(folder / "run.bin", os.X_OK)
    await tasse.rescan()
    run, _ = await run_task(tasse, "binary")
    assert run.status is RunStatus.failed
    assert run.error is not None
    assert "could not be started" in run.error
    assert "ermission denied" in run.error
    assert (await stored(tasse, run.id)) == run

    # The server is unharmed: the same task can be asked again and other tasks run.
    assert (await run_task(tasse, "binary"))[0].status is RunStatus.failed
    await add_task(tasse, make_task, "fine")
    assert (await run_task(tasse, "fine"))[0].status is RunStatus.succeeded
    assert tasse.health()["status"] == "ok"


ESCAPING_GRANDCHILD = """
import os, subprocess, sys, time
child = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(60)"],
    start_new_session=True,  # a session, and so a process group, of its own
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
open("grandchild.pid", "w").write(str(child.pid))
print("started", flush=True)
time.sleep(60)
"""


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["timeout", "cancel"])
async def test_a_grandchild_in_its_own_session_is_stopped_too(
    tasse: Tasse, make_task: MakeTask, how: str
) -> None:
    yaml = "timeout: 1.5\n" if how == "timeout" else None
    task = await add_task(tasse, make_task, "escaper", yaml, script=ESCAPING_GRANDCHILD)
    run = tasse.run_now("escaper", RunRequest())
    await wait_for_output(tasse, run.id, b"started")
    pid = int((task.folder / "grandchild.pid").read_text())
    if how == "cancel":
        await tasse.cancel_run(run.id)
    ended = await wait_final(tasse, run.id)

    assert ended.status is (RunStatus.timed_out if how == "timeout" else RunStatus.cancelled)
    assert await wait_gone(pid), f"grandchild {pid} outlived its run"
