"""Per-task virtualenvs, content-addressed: build a plan once, find it again, collect garbage.

Layout under `data/venvs/`:
    <hash>                  symlink to the finished build; its mtime is the last use
    .builds/<hash>-<stamp>/ a build (the virtualenv plus tasse-env.json)
    .builds/<hash>.lock     held while that hash builds, by this or another process
    .builds/<hash>.log      the installer's output of the latest build

A build happens in its own directory, and only a finished one gets the symlink, swapped in
atomically: a crash or a killed installer never leaves a half environment in use. The
build directory keeps its path for life, so the absolute paths an installer writes into
scripts stay valid. After a crash, `stop_orphans` and `collect_garbage` (in that order,
before any build starts) stop the installers left running and remove what they half built.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tasse.envs.installer import (
    EnvBuildError,
    InstallerProcesses,
    commands,
    failure,
    installers_in,
    kill_installers,
)
from tasse.envs.plans import EnvPlan

logger = logging.getLogger(__name__)

BUILDS = ".builds"
META = "tasse-env.json"


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


class EnvCache:
    """Finds, builds and removes environments under one `venvs` folder."""

    def __init__(self, root: Path, find_links: str | None = None, timeout: float = 900):
        self.root = root.absolute()  # installers run in the task folder
        self.builds = self.root / BUILDS
        self._find_links = find_links
        self._timeout = timeout
        self._installers = InstallerProcesses(timeout)

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
        self._installers.stop()

    def stop_orphans(self) -> int:
        """Kill installers whose build no live process owns (a killed server's); how many."""
        by_digest: dict[str, list[int]] = {}
        for pid, build in installers_in(self.builds).items():
            by_digest.setdefault(build.name.partition("-")[0], []).append(pid)
        stopped = 0
        for digest, pids in by_digest.items():
            # The build lock is held for as long as a build runs, by a server or `tasse run`;
            # free, the builder is gone. Held while killing, so no new build begins meanwhile.
            with self._unless_building(digest) as free:
                if free:
                    kill_installers(pids)
                    stopped += len(pids)
                    logger.warning(
                        "environment %s: %d installer process(es) of a build whose server "
                        "was stopped outright killed",
                        digest,
                        len(pids),
                    )
        return stopped

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
            for argv in commands(plan, target, self._find_links):
                log.write(f"$ {' '.join(argv)}\n".encode())
                log.flush()
                code = self._installers.execute(argv, plan.folder, log, target)
                if code != 0:
                    log.write(f"# exit code {code}\n".encode())
                    log.flush()
                    raise EnvBuildError(failure(argv, code, self._timeout, log_path))
        meta = {
            "hash": plan.hash,
            "built_at": datetime.now(UTC).isoformat(),
            "python": str(plan.interpreter),
            "installer": plan.installer,
            "source": plan.dependencies.source,
            "requirements": plan.dependencies.requirements,
        }
        (target / META).write_text(json.dumps(meta, indent=2), encoding="utf-8")

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
        with self._unless_building(digest) as free:
            return free

    @contextlib.contextmanager
    def _unless_building(self, digest: str) -> Iterator[bool]:
        # True (and the lock held until the block ends) when no process builds this hash.
        try:
            lock = open(self.builds / f"{digest}.lock", "a")  # noqa: SIM115 (closed below)
        except OSError:
            yield True
            return
        with lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                free = True
            except BlockingIOError:
                free = False
            except OSError:  # no locks on this filesystem: nothing to wait for either
                free = True
            yield free


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(folder))
    except FileNotFoundError:
        return []
