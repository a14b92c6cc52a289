"""Whether this process can write its data folder, checked before the server starts.

A container's user (uid 1000 in the image) and the owner of a bind-mounted host folder
often differ; without this check the server would fail deep in its start-up with a
traceback about a log file or the database. The check writes for real (a probe file in
each folder), since permission bits tell root and ACLs wrong.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from tasse.errors import DataFolderError

#: what the server writes below its data folder, checked when they exist already
WRITTEN = ("logs", "venvs", "work", "journal", "tasse.db")
#: the errors that mean "not yours to write", as opposed to a disk fault
_REFUSED = (errno.EACCES, errno.EPERM, errno.EROFS)


def check_writable(folder: Path) -> None:
    """Raise DataFolderError (one line: who may not write what, and the fix) if unwritable."""
    folder = folder.absolute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        if error.errno not in _REFUSED:
            raise DataFolderError(folder, f"cannot be created: {error.strerror}") from None
        raise _not_writable(folder, _nearest_existing(folder), error.errno) from None
    for path in [folder, *(folder / name for name in WRITTEN)]:
        problem = _write_problem(path)
        if problem is not None:
            raise _not_writable(folder, path, problem)


def _write_problem(path: Path) -> int | None:
    """The errno that refuses a write to `path` (a folder or a file), None if it can be written."""
    try:
        if path.is_dir():
            descriptor, probe = tempfile.mkstemp(prefix=".tasse-probe-", dir=path)
            os.close(descriptor)
            os.unlink(probe)
        elif path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
    except OSError as error:
        if error.errno in _REFUSED:
            return error.errno
        raise DataFolderError(path, f"cannot be written: {error.strerror}") from None
    return None


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _not_writable(folder: Path, path: Path, code: int) -> DataFolderError:
    uid, gid = os.geteuid(), os.getegid()
    if code == errno.EROFS:
        return DataFolderError(
            folder,
            f"{path} is on a read-only filesystem; mount it read-write (docker run -v "
            f"HOST_FOLDER:{folder}, without :ro)",
        )
    try:
        owner = path.stat()
        whose = f"it belongs to uid {owner.st_uid}, mode {owner.st_mode & 0o777:o}"
        user = f"{owner.st_uid}:{owner.st_gid}"
    except OSError:
        whose, user = "its owner cannot be read", "UID:GID"
    where = "" if path == folder else f" ({path})"
    return DataFolderError(
        folder,
        f"not writable by this process (uid {uid}, gid {gid}){where}: {whose}; run as its "
        f"owner (docker run --user {user} …) or give it to uid {uid} "
        f"(chown -R {uid}:{gid} {folder}; for a bind mount, on the host folder)",
    )
