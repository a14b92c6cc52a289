"""One run: a subprocess in its own process group, its output streamed to the logs, a timeout."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tasse.envs.environments import Environment
from tasse.envs.processes import processes_with
from tasse.errors import TaskConfigError
from tasse.models import Run, RunRequest, RunStatus
from tasse.runs.logs import CHUNK, RunLogWriter
from tasse.tasks.task import Task

logger = logging.getLogger(__name__)

#: how long output may keep flowing after the task's main process has exited, from
#: processes it left behind, before those are stopped too
DRAIN_SECONDS = 0.5


@dataclass(frozen=True)
class Outcome:
    """How a run ended."""

    status: RunStatus
    exit_code: int | None = None
    error: str | None = None
    #: when it ended, where another node carried it out and said so (None: now)
    finished_at: datetime | None = None


def watch_children_on_the_loop() -> Callable[[], None]:
    """Make asyncio wait for task processes on the event loop; returns how to undo it.

    On Python 3.11 asyncio's default waits for each child on a thread of its own, which
    costs a thread per run and milliseconds per spawn. A pidfd watcher waits on the loop
    (Python 3.12 does so by itself).
    """
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return lambda: None
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # kernels before 5.3, or seccomp in some containers
        return lambda: None
    policy = asyncio.get_event_loop_policy()
    previous = policy.get_child_watcher()
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(asyncio.get_running_loop())
    policy.set_child_watcher(watcher)

    def undo() -> None:
        watcher.close()
        policy.set_child_watcher(previous)

    return undo


def task_environment(task: Task, run: Run, request: RunRequest) -> dict[str, str]:
    """The environment a run sees: the server's, the task's `env`, the request's, and TASSE_*."""
    params = {f"TASSE_PARAM_{key.upper()}": value for key, value in request.params.items()}
    scheduled = run.scheduled_at or run.started_at
    return {
        **os.environ,
        # Python children write to a pipe; unbuffered, their lines arrive as printed.
        "PYTHONUNBUFFERED": "1",
        **task.spec.env,
        **request.env,
        **params,
        "TASSE_TASK": task.name,
        "TASSE_RUN_ID": run.id,
        "TASSE_TRIGGER": run.trigger.value,
        "TASSE_SCHEDULED_AT": scheduled.isoformat() if scheduled else "",
        "TASSE_ATTEMPT": str(run.attempt),
        # A task can budget its own work by it (an SQL task makes it the statement timeout).
        "TASSE_TIMEOUT": f"{task.spec.timeout:g}" if task.spec.timeout else "",
    }


def command_line(
    task: Task, run: Run, request: RunRequest, environment: Environment | None
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment variables of a run, in the task's Python environment."""
    variables = task_environment(task, run, request)
    if environment is None:
        return task.argv(request.args), variables
    return task.argv(request.args, str(environment.python)), environment.activate(variables)


def run_in_foreground(
    task: Task, run: Run, request: RunRequest, environment: Environment | None
) -> int:
    """Run a task attached to this terminal (for `tasse run`); return its exit code."""
    argv, variables = command_line(task, run, request, environment)
    # Without `stdin:` the task reads the terminal, as any command run by hand does.
    given = None if task.spec.stdin is None else task.spec.stdin.encode("utf-8")
    try:
        completed = subprocess.run(argv, cwd=task.folder, env=variables, input=given, check=False)
    except OSError as error:
        raise TaskConfigError(task.name, task.folder, f"could not be started: {error}") from None
    return completed.returncode


def filled_pipe(data: bytes) -> int:
    """The read end of a pipe that holds `data` and then ends (its write end is closed)."""
    if len(data) > select.PIPE_BUF:
        raise ValueError(f"stdin of {len(data)} bytes does not fit one pipe write")
    read, write = os.pipe()
    try:
        # At most PIPE_BUF bytes into an empty pipe: one write that never blocks, so no
        # writer has to outlive the spawn, and the child sees the end of its input at once.
        os.write(write, data)
    except OSError:
        os.close(read)
        raise
    finally:
        os.close(write)
    return read


class RunProcess:
    """Spawns one task process, streams its output, and stops its whole group when asked."""

    def __init__(
        self,
        argv: Sequence[str],
        cwd: Path,
        env: Mapping[str, str],
        writer: RunLogWriter,
        timeout: float | None,
        kill_grace: float,
        stdin: str | None = None,
    ):
        self._argv = list(argv)
        self._stdin = stdin
        self._cwd = cwd
        self._env = dict(env)
        self._writer = writer
        self._timeout = timeout
        self._kill_grace = kill_grace
        self._process: asyncio.subprocess.Process | None = None
        self._stop_requested = asyncio.Event()

    @property
    def pid(self) -> int | None:
        """The task process's id (also its process group's id), once started."""
        return self._process.pid if self._process else None

    def has_exited(self) -> bool:
        """True once the process has exited, even before the event loop has heard of it.

        After the loop was held up, the exit waits in its queue behind the fires that
        came due meanwhile; the kernel knows already (the process is gone, or a zombie).
        """
        if self._process is None:
            return False
        if self._process.returncode is not None:
            return True
        try:
            stat = Path(f"/proc/{self._process.pid}/stat").read_text()
        except OSError:
            return True  # reaped already
        return stat.rpartition(")")[2].split()[0] in ("Z", "X")

    async def start(self) -> None:
        """Spawn the process; raises OSError when it cannot be started."""
        filled = None if self._stdin is None else filled_pipe(self._stdin.encode("utf-8"))
        try:
            # start_new_session: the task and everything it starts share a fresh process
            # group, so a timeout or cancel can stop them all at once.
            self._process = await asyncio.create_subprocess_exec(
                *self._argv,
                cwd=self._cwd,
                env=self._env,
                stdin=asyncio.subprocess.DEVNULL if filled is None else filled,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if filled is not None:
                os.close(filled)  # the child has its own copy

    def stop(self) -> None:
        """Ask the run to end: SIGTERM to its group, SIGKILL after the grace time."""
        self._stop_requested.set()

    async def wait(self) -> Outcome:
        """Wait for the run to end by itself, by timeout or by `stop()`; return the outcome."""
        assert self._process is not None
        pump = asyncio.create_task(self._pump())
        exited = asyncio.create_task(self._exit_code(pump))
        stopping = asyncio.create_task(self._stop_requested.wait())
        done, _ = await asyncio.wait(
            {exited, stopping}, timeout=self._timeout, return_when=asyncio.FIRST_COMPLETED
        )
        stopping.cancel()
        status: RunStatus | None = None
        if exited not in done:
            status = RunStatus.cancelled if stopping in done else RunStatus.timed_out
            await self._terminate(exited)
        await self._drain(pump)
        code = await exited
        self._close_pipes()
        return self._outcome(status, code)

    async def _exit_code(self, pump: asyncio.Task[None]) -> int:
        # On Python 3.11, Process.wait() returns only once the output pipe has closed as
        # well, so a background child that keeps the pipe open would hang it. The pipe
        # closing is the fast path; a short poll of the exit status covers the rest.
        assert self._process is not None
        while self._process.returncode is None:
            if pump.done():
                return await self._process.wait()
            await asyncio.wait({pump}, timeout=0.05)
        return self._process.returncode

    def _close_pipes(self) -> None:
        # A process that escaped the group (its own setsid) may still hold the pipe; close
        # our end so the transport is released now rather than at garbage collection.
        transport = getattr(self._process, "_transport", None)
        if transport is not None:
            transport.close()

    def _outcome(self, stopped_as: RunStatus | None, code: int) -> Outcome:
        if stopped_as is RunStatus.timed_out:
            return Outcome(stopped_as, code, f"ran longer than its timeout of {self._timeout:g} s")
        if stopped_as is not None:
            return Outcome(stopped_as, code)
        if code == 0:
            return Outcome(RunStatus.succeeded, code)
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else -code
            return Outcome(RunStatus.failed, code, f"killed by signal {name}")
        # The last line is most often the reason (a traceback's, a database's error):
        # shown with the run, a failure reads without opening its log.
        last = self._writer.last_line
        return Outcome(
            RunStatus.failed, code, f"exited with code {code}" + (f": {last}" if last else "")
        )

    def kill(self) -> None:
        """Stop the whole process group at once (when Tasse itself cannot go on with the run)."""
        if self._process is not None:
            self._signal_group(signal.SIGKILL)

    async def _pump(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        failed = False
        while chunk := await self._process.stdout.read(CHUNK):
            try:
                self._writer.write(chunk)
            except OSError as error:
                # Keep reading (and dropping) so the task never blocks on a full pipe.
                if not failed:
                    logger.error("output of %s could not be logged: %s", self._argv, error)
                failed = True

    async def _terminate(self, exited: asyncio.Task[int]) -> None:
        self._signal_group(signal.SIGTERM)
        escaped = await asyncio.to_thread(processes_of_run, self._env.get("TASSE_RUN_ID", ""))
        _signal_all(escaped, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(exited), self._kill_grace)
        # Also when the main process obeyed: children that ignore SIGTERM must not outlive it.
        self._signal_group(signal.SIGKILL)
        # Descendants that left the group (setsid, double fork) still carry the run's id
        # in their environment.
        escaped = await asyncio.to_thread(processes_of_run, self._env.get("TASSE_RUN_ID", ""))
        _signal_all(escaped, signal.SIGKILL)

    async def _drain(self, pump: asyncio.Task[None]) -> None:
        # Normally the pipe closes when the process exits. If something it started still
        # holds the pipe open, give it a moment, then stop the rest of the group.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pump), DRAIN_SECONDS)
            return
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pump), DRAIN_SECONDS)
            return
        pump.cancel()

    def _signal_group(self, signum: signal.Signals) -> None:
        assert self._process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signum)
            logger.debug("sent %s to process group %d", signum.name, self._process.pid)


def processes_of_run(run_id: str) -> list[int]:
    """The processes whose environment says they belong to this run (Linux's /proc)."""
    if not run_id:
        return []
    return [pid for pid, value in processes_with("TASSE_RUN_ID").items() if value == run_id]


def _signal_all(pids: list[int], signum: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
    if pids:
        logger.info("sent %s to %d process(es) that left the run's group", signum.name, len(pids))


def stop_leftovers(run_ids: list[str]) -> None:
    """SIGKILL whatever processes of these (interrupted) runs still live."""
    for run_id in run_ids:
        pids = processes_of_run(run_id)
        _signal_all(pids, signal.SIGKILL)
        if pids:
            logger.warning("run %s: %d leftover process(es) stopped", run_id, len(pids))
