"""A server killed outright during a build: its installer is stopped at the next start, the
half-built directory removed, and the build done again cleanly (a real `tasse serve`, a real
`uv pip install` stuck on a package index that never answers, on loopback)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasse.envs.environments import EnvCache
from tasse.envs.installer import BUILD_VARIABLE, installers_in, kill_installers
from tests.conftest import StartServer
from tests.envs.test_env_e2e import SIX_SCRIPT, add_task, wait_env
from tests.http.test_api import wait_until


@contextlib.contextmanager
def _silent_index() -> Iterator[str]:
    """A package index URL whose server takes connections and never answers."""
    with socket.socket() as index:
        index.bind(("127.0.0.1", 0))
        index.listen(64)  # never accepted: the kernel completes handshakes, nobody replies
        yield f"http://127.0.0.1:{index.getsockname()[1]}/simple"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _installing(builds: Path) -> dict[int, Path]:
    """The processes of `pip install` steps working in `builds`, by pid."""
    found = {}
    for pid, build in installers_in(builds).items():
        with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            if b"\0install\0" in cmdline.read():
                found[pid] = build
    return found


@pytest.fixture
def builds(tmp_path: Path) -> Iterator[Path]:
    """The test's `.builds` folder; installers left in it are killed whatever the outcome."""
    folder = tmp_path / "data" / "venvs" / ".builds"
    yield folder
    kill_installers(installers_in(folder))


def test_installers_of_a_killed_server_are_stopped_and_their_build_redone(
    start_server: StartServer, builds: Path
) -> None:
    with _silent_index() as index:
        # Only the silent index: pip.conf's (this machine's has local ones) would answer.
        first = start_server(
            PIP_INDEX_URL=index,
            UV_INDEX_URL=index,
            UV_HTTP_TIMEOUT="120",
            PIP_CONFIG_FILE=os.devnull,
        )
        assert first.process is not None
        add_task(first.data_dir, "sixer", {"task.py": SIX_SCRIPT, "requirements.txt": "six\n"})
        assert first.http.post("/rescan").status_code == 200
        stuck = wait_until(lambda: _installing(builds), timeout=30)
        [half_built] = set(stuck.values())
        assert half_built.parent == builds

        first.process.kill()  # kill -9 during the build
        first.process.wait()
        time.sleep(0.5)
        # What kill -9 cannot help: the installer lives on, in its own session.
        assert all(_alive(pid) for pid in stuck), stuck
        assert half_built.exists()

        # The next start, with an index that answers.
        second = start_server()
        assert not any(_alive(pid) for pid in stuck)
        assert installers_in(builds).keys().isdisjoint(stuck)
        assert not half_built.exists()
        env = wait_env(second, "sixer", "ready", timeout=45)

    assert Path(env["path"]) != half_built
    assert [p for p in builds.iterdir() if p.is_dir()] == [Path(env["path"])]
    # The rebuild's log is its own: one build, nothing written into it by the old installer.
    log = (builds / f"{env['hash']}.log").read_text()
    assert log.count(" building ") == 1
    assert str(half_built) not in log
    assert "installer process(es) of a build whose server was stopped outright killed" in (
        second.output.read_text()
    )


def _fake_installer(build: Path) -> subprocess.Popen[bytes]:
    """A process tagged as working on `build`, in a session of its own, as installers run."""
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, BUILD_VARIABLE: str(build)},
        start_new_session=True,
    )


def test_only_installers_whose_builder_is_gone_are_stopped(tmp_path: Path) -> None:
    cache = EnvCache(tmp_path / "data" / "venvs")
    cache.builds.mkdir(parents=True)
    other = EnvCache(tmp_path / "other" / "venvs")  # another data folder on this machine
    mine = _fake_installer(cache.builds / "abc123-1")
    theirs = _fake_installer(other.builds / "abc123-1")
    try:
        wait_until(lambda: {mine.pid} <= installers_in(cache.builds).keys())
        assert theirs.pid not in installers_in(cache.builds)
        # A live builder (this server, or `tasse run` in a shell) holds the build's lock.
        with open(cache.builds / "abc123.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            assert cache.stop_orphans() == 0
            assert mine.poll() is None
        assert cache.stop_orphans() == 1
        assert mine.wait(timeout=5) == -signal.SIGKILL
        assert theirs.poll() is None  # not this folder's: left alone
    finally:
        for process in (mine, theirs):
            process.kill()
            process.wait()
