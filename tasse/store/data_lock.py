"""One server per data folder: an exclusive `flock` on `<data>/.tasse.lock`, holding the pid.

The kernel drops an flock when its holder dies, however it dies, so a server killed with
SIGKILL never leaves a stale lock behind (the pid written in the file is only for the
message). The lock is per data folder, not per store: nodes sharing one store each have
their own folder. The descriptor is not inherited (Python opens files non-inheritable),
so runs and installers that outlive a killed server do not keep its folder locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from tasse.errors import DataFolderBusyError, DataFolderError

LOCK_FILE = ".tasse.lock"
#: how long a refused server waits for the holder's pid to appear (it is written just
#: after the lock is taken)
_PID_WAIT = 0.5


class DataLock:
    """Holds the data folder for this process: `acquire()` at once or refuse, `release()`."""

    def __init__(self, data_dir: Path):
        self.folder = data_dir.absolute()
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the folder; raises DataFolderBusyError naming the holder's pid if it is taken."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise DataFolderError(self.folder, f"{self.path} cannot be opened: {error}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            raise DataFolderBusyError(self.folder, pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let the folder go (emptying the pid first, so the file never names a stranger)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> DataLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def _holder(fd: int) -> int | None:
    deadline = time.monotonic() + _PID_WAIT
    while True:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text.isdigit():
            return int(text)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)
