"""`tasse serve` on a data folder it cannot write: one line naming the folder, uid and fix.

The folder is made unwritable for real: `chmod` for an ordinary user; for root (whom
permission bits do not stop) the immutable attribute (`chattr +i`), or a read-only bind
mount in a mount namespace of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tasse.store.data_folder import check_writable
from tests.ports import free_port

Lock = Callable[[Path], None]


def _serve(data: Path, wrapper: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tasse", "serve", "--data-dir", str(data)]
    command += ["--http-listen-address", f"127.0.0.1:{free_port()}"]
    return subprocess.run(
        [*(wrapper or []), *command], capture_output=True, text=True, timeout=30, check=False
    )


def _blocked(folder: Path) -> bool:
    try:
        (folder / "probe").touch()
    except OSError:
        return True
    (folder / "probe").unlink()
    return False


@pytest.fixture
def lock() -> Iterator[Lock]:
    """Make a folder unwritable to this process for the test, however it runs."""
    locked: list[Path] = []
    root = os.geteuid() == 0

    def make_unwritable(folder: Path) -> None:
        if not root:
            folder.chmod(0o555)
        elif shutil.which("chattr") is None:
            pytest.skip("running as root, and no chattr to make a folder immutable")
        elif subprocess.run(["chattr", "+i", str(folder)], check=False).returncode != 0:
            pytest.skip("running as root on a filesystem without the immutable attribute")
        locked.append(folder)
        assert _blocked(folder), f"{folder} is still writable"

    yield make_unwritable
    for folder in locked:
        if root:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        else:
            folder.chmod(0o755)


def _assert_one_clear_line(result: subprocess.CompletedProcess[str], names: Path) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(f"tasse: data folder {names}")
    assert f"uid {os.geteuid()}" in line
    assert "--user" in line
    assert "chown -R" in line
    return line


def test_an_unwritable_data_folder_stops_the_server_with_one_line(
    tmp_path: Path, lock: Lock
) -> None:
    data = tmp_path / "data"
    (data / "tasks").mkdir(parents=True)
    lock(data)

    line = _assert_one_clear_line(_serve(data), data)

    assert f"it belongs to uid {data.stat().st_uid}" in line
    assert not (data / "tasse.db").exists()
    assert not (data / ".tasse.lock").exists()


def test_an_unwritable_logs_folder_is_named(tmp_path: Path, lock: Lock) -> None:
    data = tmp_path / "data"
    (data / "tasks").mkdir(parents=True)
    (data / "logs").mkdir()
    lock(data / "logs")

    line = _assert_one_clear_line(_serve(data), data)

    assert f"({data / 'logs'})" in line


def test_a_data_folder_that_cannot_be_created_is_explained(tmp_path: Path, lock: Lock) -> None:
    parent = tmp_path / "mnt"
    parent.mkdir()
    lock(parent)

    _assert_one_clear_line(_serve(parent / "data"), parent / "data")


def test_a_read_only_mount_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "tasks").mkdir(parents=True)
    mount = f'mount --bind -o ro {data} {data} && exec "$@"'
    if subprocess.run(["unshare", "-m", "sh", "-c", mount, "-", "true"], check=False).returncode:
        pytest.skip("no mount namespace here (unshare -m needs CAP_SYS_ADMIN)")

    result = _serve(data, ["unshare", "-m", "sh", "-c", mount, "-"])

    assert result.returncode == 1, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"tasse: data folder {data}: {data} is on a read-only filesystem" in result.stderr
    assert "without :ro" in result.stderr


def test_a_writable_folder_passes_the_check_untouched(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    check_writable(data)  # created, probed, left as it was
    assert data.is_dir()
    assert list(data.iterdir()) == []
