"""A task folder's content digest: what a cluster's worker compares with the scheduler's, so
that a worker whose copy of the folder differs says so instead of running other code.

The digest covers every regular file's path and bytes under the folder, except hidden
entries (`.git`, `.venv`) and `__pycache__`, which do not make the task what it is. It is
recomputed only when a file's size or modification time changes (stat calls, no reads).
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

#: files of one folder read for its digest at most (larger folders: their first ones)
MAX_FILES = 10_000

_Listing = tuple[tuple[str, int, int], ...]


def folder_digest(folder: Path) -> str:
    """The folder's content digest (sha256, hex); the same on every machine for the same files."""
    return _digest(str(folder), _listing(folder))


def _listing(folder: Path) -> _Listing:
    found: list[tuple[str, int, int]] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = os.path.join(root, name)
            try:
                info = os.stat(path)
            except OSError:  # gone meanwhile
                continue
            found.append((os.path.relpath(path, folder), info.st_size, info.st_mtime_ns))
            if len(found) >= MAX_FILES:
                return tuple(found)
    return tuple(found)


@lru_cache(maxsize=4096)
def _digest(folder: str, listing: _Listing) -> str:
    digest = hashlib.sha256()
    for relative, _, _ in listing:
        digest.update(relative.encode() + b"\0")
        try:
            digest.update(Path(folder, relative).read_bytes())
        except OSError:  # unreadable: its absence is part of the digest
            digest.update(b"\1unreadable")
        digest.update(b"\0")
    return digest.hexdigest()
