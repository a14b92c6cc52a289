"""A PostgreSQL cluster of the test's own, to stop, kill and pause (never the shared one).

`initdb` into a temporary folder as the `postgres` user, on a free port of its own; the
test may stop it (fast shutdown), kill -9 its processes, or SIGSTOP them as a hung
network would leave them, and start or continue it again.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.ports import free_port


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    command = ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]


class PrivateCluster:
    """One PostgreSQL cluster in a folder of its own, with its own port."""

    def __init__(self, listen: str = "127.0.0.1", trusted: str | None = None) -> None:
        #: the addresses it listens on, and a network (CIDR) it trusts besides loopback
        self.listen, self.trusted = listen, trusted
        self.bin = _binaries()
        # Not under pytest's own folders: those are the test user's alone (0700), and the
        # server runs as `postgres`.
        self.folder = Path(tempfile.mkdtemp(prefix="tasse-pg-")) / "pgdata"
        self.port = free_port()
        self.address = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def create(self) -> None:
        if self.bin is None or shutil.which("runuser") is None:
            _unavailable("no PostgreSQL server binaries (initdb) on this machine")
        self.folder.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder.parent, "postgres", "postgres")
            shutil.chown(self.folder, "postgres", "postgres")
        initdb = [str(self.bin / "initdb"), "-D", str(self.folder), "-A", "trust", "-U", "postgres"]
        result = _as_postgres([*initdb, "--no-sync"], timeout=120)
        if result.returncode != 0:
            _unavailable(f"initdb failed: {result.stderr.strip()[-500:]}")
        if self.trusted is not None:
            with (self.folder / "pg_hba.conf").open("a") as hba:
                hba.write(f"host all all {self.trusted} trust\n")
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses={self.listen} -c fsync=off"
        result = _as_postgres(
            [
                *(str(self.bin / "pg_ctl"), "-D", str(self.folder), "-o", options),
                *("-w", "-t", "60", "-l", str(self.folder.parent / "server.log"), "start"),
            ],
            timeout=90,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def stop(self, mode: str = "fast") -> None:
        result = _as_postgres(
            [str(self.bin / "pg_ctl"), "-D", str(self.folder), "-m", mode, "-w", "stop"],
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def processes(self) -> list[int]:
        """The postmaster and every backend of this cluster."""
        try:
            postmaster = int((self.folder / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        children = subprocess.run(
            ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
        ).stdout.split()
        return [postmaster, *map(int, children)]

    def signal(self, signum: signal.Signals) -> None:
        """Send a signal to every process of the cluster."""
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def kill(self) -> None:
        """kill -9 every process of the cluster, as a crash would."""
        pids = self.processes()
        self.signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)

    def destroy(self) -> None:
        if self.processes():
            self.signal(signal.SIGCONT)
            _as_postgres(
                [str(self.bin / "pg_ctl"), "-D", str(self.folder), "-m", "immediate", "stop"],
                timeout=30,
            )
        shutil.rmtree(self.folder.parent, ignore_errors=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _unavailable(reason: str) -> None:
    if os.environ.get("TASSE_REQUIRE_SERVICES"):
        pytest.fail(f"a private PostgreSQL cluster is required: {reason}")
    pytest.skip(f"a private PostgreSQL cluster cannot be made: {reason}")
