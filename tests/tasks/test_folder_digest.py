"""A task folder's digest: the same for the same files wherever they are, another for any
change a task's code could notice, and blind to what does not make the task."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tasse.tasks.folder_digest import folder_digest


def _folder(root: Path) -> Path:
    folder = root / "report"
    (folder / "lib").mkdir(parents=True)
    (folder / "task.yaml").write_text("schedule: '0 3 * * *'\n")
    (folder / "task.py").write_text("import lib.helpers\n")
    (folder / "lib" / "helpers.py").write_text("ANSWER = 42\n")
    return folder


def test_the_same_files_anywhere_have_the_same_digest(tmp_path: Path) -> None:
    here = _folder(tmp_path / "a")
    there = tmp_path / "b" / "report"
    shutil.copytree(here, there)
    os.utime(there / "task.py", (1_000_000_000, 1_000_000_000))  # another checkout's times
    assert folder_digest(here) == folder_digest(there)
    assert len(folder_digest(here)) == 64


def test_any_change_of_content_or_name_changes_it(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    first = folder_digest(folder)
    (folder / "lib" / "helpers.py").write_text("ANSWER = 43\n")  # a module, not only task.py
    edited = folder_digest(folder)
    assert edited != first
    (folder / "lib" / "helpers.py").rename(folder / "lib" / "other.py")
    assert folder_digest(folder) not in (first, edited)


def test_caches_and_hidden_entries_do_not_count(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    first = folder_digest(folder)
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "task.cpython-311.pyc").write_bytes(b"\0")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / ".env.swp").write_text("x")
    assert folder_digest(folder) == first
