"""Per-task virtualenvs: hash a dependency spec, build it once, find it again, collect garbage.

Layout under `data/venvs/`:
    <hash>                  symlink to the finished build; its mtime is the last use
    .builds/<hash>-<stamp>/ a build (the virtualenv plus tasse-env.json)
    .builds/<hash>.lock     held while that hash builds, by this or another process
    .builds/<hash>.log      the installer's output of the latest build

A build happens in its own directory, and only a finished one gets the symlink, swapped in
atomically: a crash or a killed installer never leaves a half environment in use. The
build directory keeps its path for life, so the absolute paths an installer writes into
scripts stay valid.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Literal

from tasse.envs.dependencies import REQUIREMENTS, Dependencies
from tasse.envs.interpreters import Interpreter, choose, parse_request
from tasse.models import Task

logger = logging.getLogger(__name__)

Installer = Literal["uv", "pip"]
BUILDS = ".builds"
META = "tasse-env.json"
#: `_execute`'s code for an installer stopped by the build timeout
TIMED_OUT = -1000
#: how much of the installer's output an error message quotes
ERROR_TAIL_LINES = 12
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


@dataclass(frozen=True)
class EnvPlan:
    """Everything that decides an environment's content, and the hash naming it."""

    dependencies: Dependencies
    interpreter: Interpreter
    installer: Installer
    #: where the installer runs: relative paths in requirements are the task folder's
    folder: Path
    hash: str


@dataclass(frozen=True)
class Environment:
    """A finished environment, at the real path of its build."""

    hash: str
    path: Path
    built_at: datetime

    @property
    def python(self) -> Path:
        """Its interpreter."""
        return self.path / "bin" / "python"

    def activate(self, environ: Mapping[str, str]) -> dict[str, str]:
        """`environ` as an activated virtualenv sees it: its bin first on PATH."""
        result = {k: v for k, v in environ.items() if k != "PYTHONHOME"}
        result["VIRTUAL_ENV"] = str(self.path)
        result["PATH"] = os.pathsep.join([str(self.path / "bin"), environ.get("PATH", "")])
        return result


@functools.cache
def uv_binary() -> str | None:
    """The uv executable shipped with Tasse (or on PATH), if any."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def pick_installer(setting: str) -> Installer:
    """`auto` means uv when it is there, virtualenv + pip otherwise."""
    if setting == "pip" or (setting == "auto" and uv_binary() is None):
        return "pip"
    return "uv"


def plan(task: Task, dependencies: Dependencies, installer: Installer) -> EnvPlan:
    """Choose the interpreter and hash the spec; raises NoInterpreterError."""
    # Paths in the lines are the folder's, so only this folder may share it.
    folder = str(task.folder.resolve()) if dependencies.local else None
    interpreter, digest = _choose_and_hash(dependencies, task.spec.python, installer, folder)
    return EnvPlan(dependencies, interpreter, installer, task.folder, digest)


@functools.lru_cache(maxsize=4096)
def _choose_and_hash(
    dependencies: Dependencies, python: str | None, installer: Installer, folder: str | None
) -> tuple[Interpreter, str]:
    # Cached: thousands of tasks usually share a handful of specs (most, the bare one).
    constraints = []
    if python:
        constraints.append(("`python:` in task.yaml", str(parse_request(python))))
    if dependencies.requires_python:
        where = f"requires-python in {dependencies.source}"
        constraints.append((where, dependencies.requires_python))
    interpreter = choose(constraints)
    spec = {
        "requirements": dependencies.requirements,
        "python": [interpreter.implementation, str(interpreter.version), interpreter.path],
        "installer": installer,
        "folder": folder,
    }
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    return interpreter, digest


class EnvCache:
    """Finds, builds and removes environments under one `venvs` folder."""

    def __init__(self, root: Path, find_links: str | None = None, timeout: float = 900):
        self.root = root.absolute()  # installers run in the task folder
        self.builds = self.root / BUILDS
        self._find_links = find_links
        self._timeout = timeout
        self._processes: set[subprocess.Popen[bytes]] = set()
        self._guard = threading.Lock()
        self._stopping = False

    def log_file(self, digest: str) -> Path:
        """The latest build's installer output for a hash."""
        return self.builds / f"{digest}.log"

    def find(self, digest: str) -> Environment | None:
        """The finished environment for a hash, if there is one."""
        link = self.root / digest
        try:
            target = (self.root / os.readlink(link)).resolve()
            meta = json.loads((target / META).read_text(encoding="utf-8"))
            return Environment(digest, target, datetime.fromisoformat(meta["built_at"]))
        except (OSError, ValueError, KeyError):
            return None

    def touch(self, digest: str) -> None:
        """Mark the environment as used now (garbage collection spares it)."""
        with contextlib.suppress(OSError):
            os.utime(self.root / digest, follow_symlinks=False)

    def build(self, plan: EnvPlan, force: bool = False) -> Environment:
        """Build the planned environment unless it exists (or `force`); raises EnvBuildError."""
        self.builds.mkdir(parents=True, exist_ok=True)
        with self._locked(plan.hash):
            existing = self.find(plan.hash)
            if existing is not None and not force:
                return existing
            target = self.builds / f"{plan.hash}-{time.time_ns()}"
            try:
                self._install(plan, target)
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
            return self._publish(plan, target)

    def stop(self) -> None:
        """Kill every installer this cache is running (server shutdown)."""
        with self._guard:
            self._stopping = True
            for process in self._processes:
                with contextlib.suppress(OSError):
                    os.killpg(process.pid, signal.SIGKILL)

    def collect_garbage(self, keep: set[str], max_age: float, leftovers_age: float) -> list[str]:
        """Remove environments unused for `max_age` s that no task in `keep` needs."""
        removed = []
        now = time.time()
        linked: set[str] = set()
        for entry in _entries(self.root):
            if not entry.is_symlink():
                continue
            target = os.path.basename(os.readlink(entry.path))
            if entry.name in keep or now - entry.stat(follow_symlinks=False).st_mtime < max_age:
                linked.add(target)
                continue
            os.unlink(entry.path)
            shutil.rmtree(self.builds / target, ignore_errors=True)
            removed.append(entry.name)
        for entry in _entries(self.builds):
            # Unlinked builds: left by a crash, or replaced by a rebuild (and maybe still
            # used by a run that started before it, hence the age).
            if entry.is_dir() and entry.name not in linked:
                digest = entry.name.partition("-")[0]
                if now - entry.stat().st_mtime >= leftovers_age and self._free(digest):
                    shutil.rmtree(entry.path, ignore_errors=True)
        return removed

    # -- building --------------------------------------------------------------------------

    def _install(self, plan: EnvPlan, target: Path) -> None:
        log_path = self.log_file(plan.hash)
        with log_path.open("wb") as log:
            log.write(f"# {datetime.now(UTC).isoformat()} building {plan.hash}\n".encode())
            for argv in self._commands(plan, target):
                log.write(f"$ {' '.join(argv)}\n".encode())
                log.flush()
                code = self._execute(argv, plan.folder, log)
                if code != 0:
                    log.write(f"# exit code {code}\n".encode())
                    log.flush()
                    raise EnvBuildError(_failure(argv, code, self._timeout, log_path))
        meta = {
            "hash": plan.hash,
            "built_at": datetime.now(UTC).isoformat(),
            "python": str(plan.interpreter),
            "installer": plan.installer,
            "source": plan.dependencies.source,
            "requirements": plan.dependencies.requirements,
        }
        (target / META).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    def _commands(self, plan: EnvPlan, target: Path) -> Iterator[list[str]]:
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
        links = ["--find-links", self._find_links] if self._find_links else []
        yield [*install, *links, "-r", str(requirements)]

    def _execute(self, argv: list[str], cwd: Path, log: BinaryIO) -> int:
        with self._guard:
            if self._stopping:
                return -signal.SIGKILL
            # A session of its own: stopping Tasse kills the installer and its helpers.
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=installer_environment(os.environ),
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

    def _publish(self, plan: EnvPlan, target: Path) -> Environment:
        link = self.root / plan.hash
        staging = self.builds / f"{plan.hash}.link"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)
        os.symlink(os.path.relpath(target, self.root), staging)
        os.replace(staging, link)  # atomic: the old build or the new one, never neither
        environment = self.find(plan.hash)
        assert environment is not None
        logger.info("environment %s built (%s)", plan.hash, plan.interpreter)
        return environment

    @contextlib.contextmanager
    def _locked(self, digest: str) -> Iterator[None]:
        # flock: a `tasse run` in a shell and the server never build the same hash twice.
        with open(self.builds / f"{digest}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _free(self, digest: str) -> bool:
        try:
            with open(self.builds / f"{digest}.lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
        except BlockingIOError:
            return False
        except OSError:
            return True


def installer_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The server's environment with index settings in both pip's and uv's spelling."""
    result = {k: v for k, v in environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    for pip_name, uv_name in _INDEX_VARIABLES.items():
        if pip_name in result and uv_name not in result:
            result[uv_name] = result[pip_name]
        elif uv_name in result and pip_name not in result:
            result[pip_name] = result[uv_name]
    # Never download an interpreter: a task asks for one the machine has.
    result["UV_PYTHON_DOWNLOADS"] = "never"
    return result


def _failure(argv: list[str], code: int, timeout: float, log_path: Path) -> str:
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


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(folder))
    except FileNotFoundError:
        return []
