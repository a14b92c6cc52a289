"""Runs the installer (uv, or virtualenv + pip) for a build: its commands, its processes.

Each installer runs in a session of its own with a time limit, so that stopping Tasse or
a build that hangs kills it and every helper it started. Each also carries its build
directory in its environment (`TASSE_ENV_BUILD`, inherited by every helper), so that the
installers of a server killed outright can be found after the crash and stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from tasse.envs import pip_config
from tasse.envs.dependencies import REQUIREMENTS
from tasse.envs.plans import EnvPlan, uv_binary
from tasse.envs.processes import processes_with

#: `InstallerProcesses.execute`'s code for an installer stopped by the build timeout
TIMED_OUT = -1000
#: how much of the installer's output an error message quotes
ERROR_TAIL_LINES = 12
#: the environment variable naming the build directory an installer works on
BUILD_VARIABLE = "TASSE_ENV_BUILD"
#: how long `kill_installers` waits for the killed processes to be gone
_KILL_WAIT = 2.0
#: index settings each installer reads from the environment, in both spellings
_INDEX_VARIABLES = {
    "PIP_INDEX_URL": "UV_INDEX_URL",
    "PIP_EXTRA_INDEX_URL": "UV_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS": "UV_FIND_LINKS",
    "PIP_NO_INDEX": "UV_NO_INDEX",
    "PIP_TRUSTED_HOST": "UV_INSECURE_HOST",
}


class EnvBuildError(RuntimeError):
    """The installer failed; the message ends with its last lines of output."""


class InstallerProcesses:
    """Starts installer commands and kills them all when the server stops."""

    def __init__(self, timeout: float):
        self._timeout = timeout
        self._processes: set[subprocess.Popen[bytes]] = set()
        self._guard = threading.Lock()
        self._stopping = False

    def stop(self) -> None:
        """Kill every installer still running (server shutdown); later ones do not start."""
        with self._guard:
            self._stopping = True
            for process in self._processes:
                with contextlib.suppress(OSError):
                    os.killpg(process.pid, signal.SIGKILL)

    def execute(self, argv: list[str], cwd: Path, log: BinaryIO, build: Path) -> int:
        """Run one command building into `build`, output in `log`; its exit code, or TIMED_OUT."""
        with self._guard:
            if self._stopping:
                return -signal.SIGKILL
            # A session of its own: stopping Tasse kills the installer and its helpers.
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env={**installer_environment(os.environ), BUILD_VARIABLE: str(build)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self._processes.add(process)
        # wait() without a timeout: with one, CPython polls in sleeps of up to 50 ms,
        # which a build of two quick commands notices. A timer enforces the limit instead.
        timed_out = threading.Event()

        def stop_installer() -> None:
            timed_out.set()
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(self._timeout, stop_installer)
        timer.start()
        try:
            code = process.wait()
        finally:
            timer.cancel()
            with self._guard:
                self._processes.discard(process)
        return TIMED_OUT if timed_out.is_set() else code


def commands(plan: EnvPlan, target: Path, find_links: str | None) -> Iterator[list[str]]:
    """The commands that build `plan` into `target`: make the virtualenv, then install."""
    python = str(plan.interpreter.path)
    uv = uv_binary()
    if plan.installer == "uv" and uv is not None:
        yield [uv, "venv", "--quiet", "--no-python-downloads", "--python", python, str(target)]
        install = [uv, "pip", "install", "--python", str(target / "bin" / "python")]
    else:
        yield [sys.executable, "-m", "virtualenv", "--quiet", "--python", python, str(target)]
        install = [str(target / "bin" / "python"), "-m", "pip", "install"]
        install += ["--disable-pip-version-check", "--no-input"]
    deps = plan.dependencies
    if not deps.requirements:
        return
    # The code below runs once the virtualenv exists (a generator resumes after each
    # command), so the requirements file can be written into it.
    if deps.local and deps.source == REQUIREMENTS:
        # The task's own file: `-r other.txt` in it is relative to where it lies.
        requirements = plan.folder.resolve() / REQUIREMENTS
    else:
        requirements = target / "tasse-requirements.txt"
        requirements.write_text("\n".join(deps.requirements) + "\n", encoding="utf-8")
    links = ["--find-links", find_links] if find_links else []
    yield [*install, *links, "-r", str(requirements)]


def installer_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The server's environment with index settings in both pip's and uv's spelling.

    Settings come from the variables, and then from pip's configuration files (which uv
    does not read), as pip would take them: a variable wins over a file.
    """
    result = {k: v for k, v in environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    files = pip_config.configured(environ)
    for pip_name, uv_name in _INDEX_VARIABLES.items():
        if pip_name not in result and uv_name not in result and pip_name in files:
            result[pip_name] = files[pip_name]
        if pip_name in result and uv_name not in result:
            result[uv_name] = _respelled(pip_name, result[pip_name], to_uv=True)
        elif uv_name in result and pip_name not in result:
            result[pip_name] = _respelled(pip_name, result[uv_name], to_uv=False)
    # Never download an interpreter: a task asks for one the machine has.
    result["UV_PYTHON_DOWNLOADS"] = "never"
    return result


def _respelled(pip_name: str, value: str, to_uv: bool) -> str:
    # pip separates several find-links with blanks, uv with commas (its other lists: blanks).
    if pip_name != "PIP_FIND_LINKS":
        return value
    return ",".join(value.split()) if to_uv else " ".join(value.replace(",", " ").split())


def installers_in(builds: Path) -> dict[int, Path]:
    """Processes working on a build directory in `builds`, with that directory (Linux's /proc)."""
    found = {pid: Path(value) for pid, value in processes_with(BUILD_VARIABLE).items()}
    return {pid: build for pid, build in found.items() if _same_folder(build.parent, builds)}


def kill_installers(pids: Iterable[int]) -> None:
    """SIGKILL these processes (and the process group of each that leads one); wait till gone."""
    pids = list(pids)
    for pid in pids:
        with contextlib.suppress(OSError):
            if os.getpgid(pid) == pid:  # an installer leads its session: its helpers too
                os.killpg(pid, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
    # Only once they are gone may their build directory be removed: else one still writing
    # could recreate parts of it.
    deadline = time.monotonic() + _KILL_WAIT
    while any(map(_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] != b"Z"  # a zombie runs no code
    except (OSError, IndexError):
        return False


def _same_folder(one: Path, other: Path) -> bool:
    try:
        return one == other or os.path.samefile(one, other)
    except OSError:
        return False


def failure(argv: list[str], code: int, timeout: float, log_path: Path) -> str:
    """The build's error message: what the installer did, and its last lines."""
    lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    output = [line for line in lines if not line.startswith(("# ", "$ "))]
    tail = "\n".join(output[-ERROR_TAIL_LINES:])
    if code == TIMED_OUT:
        what = f"took longer than {timeout:g} s and was stopped"
    elif code < 0:
        what = f"was killed by signal {-code}"
    else:
        what = f"exited with code {code}"
    return f"{Path(argv[0]).name} {' '.join(argv[1:3])} {what}:\n{tail}".rstrip()
