"""One server per data folder: the lock refuses a second holder, and dies with its holder."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasse.errors import DataFolderBusyError
from tasse.store.data_lock import LOCK_FILE, DataLock

#: a process that takes the folder's lock, says so, and keeps it until it is killed
HOLDER = """
import sys, time
from pathlib import Path
from tasse.store.data_lock import DataLock
DataLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(60)
"""


@contextlib.contextmanager
def _held(data_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the folder, killed (SIGKILL) at the end if still alive."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_dir)], stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        try:
            yield holder
        finally:
            holder.kill()


def test_a_second_holder_is_refused_with_the_folder_and_the_pid(data_dir: Path) -> None:
    with _held(data_dir) as holder, pytest.raises(DataFolderBusyError) as refused:
        DataLock(data_dir).acquire()
    assert refused.value.pid == holder.pid
    message = str(refused.value)
    assert str(data_dir.absolute()) in message
    assert f"pid {holder.pid}" in message
    assert "\n" not in message


def test_a_killed_holder_leaves_no_stale_lock(data_dir: Path) -> None:
    with _held(data_dir) as holder:
        holder.kill()  # SIGKILL: no clean-up code runs, the pid stays in the file
        holder.wait()
    assert (data_dir / LOCK_FILE).read_text().strip() == str(holder.pid)
    with DataLock(data_dir) as lock:
        assert (data_dir / LOCK_FILE).read_text().strip() != str(holder.pid)
        assert lock.path == (data_dir / LOCK_FILE).absolute()


def test_release_lets_another_process_take_the_folder(data_dir: Path) -> None:
    with DataLock(data_dir):
        pass
    assert (data_dir / LOCK_FILE).read_text() == ""  # the file never names a past holder
    with _held(data_dir) as holder:
        assert (data_dir / LOCK_FILE).read_text().strip() == str(holder.pid)


def test_a_missing_data_folder_is_created(tmp_path: Path) -> None:
    with DataLock(tmp_path / "new" / "data") as lock:
        assert lock.path.exists()
