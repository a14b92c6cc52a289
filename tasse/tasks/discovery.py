"""Task folders → `Task` or a per-task error. Reads files, never schedules anything."""

from __future__ import annotations

import functools
import os
import re
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tasse.envs.dependencies import DEPENDENCY_FILES, read_dependencies, regular_files
from tasse.errors import TaskConfigError, TaskNameError, TaskNotFoundError
from tasse.tasks.task import PYTHON, Task, TaskSpec
from tasse.tasks.task_file import parse_spec, read_task_file
from tasse.values import TASK_NAME_PATTERN

TASK_FILE = "task.yaml"
DEFAULT_ENTRYPOINTS = ("task.py", "task.sh")
_NAME = re.compile(TASK_NAME_PATTERN)
#: (folder mtime, task.yaml mtime, task.yaml size, newest dependency file mtime): adding,
#: removing or renaming a file changes the folder's mtime; editing a file in place
#: changes its own.
Fingerprint = tuple[int, int, int, int]
#: remembered for a folder changed in the last moments: never equal to a real fingerprint
RECENT: Fingerprint = (-1, -1, -1, -1)
#: files whose content shapes the task's environment (task.py: a PEP 723 block)
WATCHED_FILES = (*DEPENDENCY_FILES, "task.py")
#: a change this recent may be followed by another within the same timestamp tick on
#: filesystems with coarse clocks (FAT, SMB, some bind mounts), which the fingerprint
#: could not tell apart; such folders are parsed again at the next scan (as git does).
RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class Scan:
    """What one pass over the tasks folder found, relative to what was known before."""

    #: folders whose fingerprint is new or changed, each parsed into a task or an error
    loaded: dict[str, Task | TaskConfigError] = field(default_factory=dict)
    fingerprints: dict[str, Fingerprint] = field(default_factory=dict)
    #: known names whose folder is gone
    removed: set[str] = field(default_factory=set)
    #: folders that are not tasks because of their name
    rejected: list[str] = field(default_factory=list)


def scan(tasks_dir: Path, known: Mapping[str, Fingerprint], only: set[str] | None = None) -> Scan:
    """Visit the task folders (all, or the names in `only`); parse the ones that changed."""
    result = Scan()
    racy_after = time.time_ns() - RACY_NS
    for name, folder in _folders(tasks_dir, only):
        if not _NAME.match(name):
            result.rejected.append(name)
            continue
        try:
            fingerprint, present = _probe(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue  # vanished between listing and looking: it counts as removed
        except OSError as error:  # a symlink loop, a folder we may not read
            result.fingerprints[name] = RECENT
            problem = f"cannot be read: {error.strerror or error}"
            result.loaded[name] = TaskConfigError(name, folder, problem)
            continue
        changed_at = max(fingerprint[0], fingerprint[1], fingerprint[3])
        result.fingerprints[name] = RECENT if changed_at > racy_after else fingerprint
        if known.get(name) != fingerprint:
            result.loaded[name] = load_or_error(Path(folder), present)
    candidates = set(known) if only is None else set(known) & only
    result.removed.update(candidates - set(result.fingerprints))
    return result


def _folders(tasks_dir: Path, only: set[str] | None) -> list[tuple[str, str]]:
    # Plain strings, not Paths: with ten thousand folders, pathlib's parsing shows.
    if only is not None:
        folders = [(name, os.path.join(tasks_dir, name)) for name in only]
        return [(name, path) for name, path in folders if os.path.isdir(path)]
    try:
        entries = list(os.scandir(tasks_dir))
    except FileNotFoundError:
        return []
    # Hidden folders (.git) and stray files (README.md) are not tasks, and not errors either.
    return [(e.name, e.path) for e in entries if not e.name.startswith(".") and _is_folder(e)]


def _is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return True  # a symlink loop: kept, so that loading it reports the problem


def folder_fingerprint(folder: str | Path) -> Fingerprint:
    """Cheap change detector: a few stat calls, no reading."""
    return _probe(folder)[0]


def _probe(folder: str | Path) -> tuple[Fingerprint, frozenset[str]]:
    # One stat per file that defines a task; what exists is handed on to loading, so it
    # need not look again (with ten thousand folders, every stat shows).
    folder_mtime = os.stat(folder).st_mtime_ns
    task_file: tuple[int, int] = (0, -1)
    newest, present = 0, set()
    for name in (TASK_FILE, *WATCHED_FILES):
        try:
            status = os.stat(os.path.join(folder, name))
        except (FileNotFoundError, NotADirectoryError):
            continue
        if name == TASK_FILE:
            task_file = (status.st_mtime_ns, status.st_size)
        else:
            newest = max(newest, status.st_mtime_ns)
        if stat.S_ISREG(status.st_mode):
            present.add(name)
    return (folder_mtime, *task_file, newest), frozenset(present)


def load_by_name(tasks_dir: Path, name: str) -> Task:
    """Load the task folder of that name (for the CLI); raises a TasseError saying why not."""
    if not _NAME.match(name):
        raise TaskNameError(name)
    folder = tasks_dir / name
    if not folder.is_dir():
        raise TaskNotFoundError(name, f"there is no folder {str(folder)!r}")
    result = load_or_error(folder)
    if isinstance(result, TaskConfigError):
        raise result
    return result


def load_or_error(folder: Path, present: frozenset[str] | None = None) -> Task | TaskConfigError:
    """Load one task folder, turning every problem into a `TaskConfigError` for that task."""
    try:
        return load_task(folder, present)
    except TaskConfigError as error:
        return error
    except OSError as error:
        return TaskConfigError(folder.name, folder, f"cannot be read: {error.strerror or error}")


def load_task(folder: Path, present: frozenset[str] | None = None) -> Task:
    """Read `folder/task.yaml` (optional) and find the entrypoint.

    `present`: which of task.yaml, task.py and the dependency files exist, if known.
    """
    name = folder.name
    _check_confined(name, folder, folder)
    _check_confined(name, folder, folder / TASK_FILE)
    spec = parse_spec(name, folder / TASK_FILE, read_task_file(name, folder / TASK_FILE))
    files = regular_files(folder) if present is None else _with_shell_script(folder, present)
    command = _command(name, folder, spec, files)
    # The default entrypoints and dependency files (an explicit entrypoint was resolved).
    for file in files & _DEFINING_FILES:
        _check_confined(name, folder, folder / file)
    is_python = command[0] == PYTHON
    dependencies = read_dependencies(name, folder, command[1] if is_python else None, files)
    return Task(
        name=name,
        folder=folder,
        spec=spec,
        command=command,
        # Python always gets an environment (a bare one at least); other entrypoints
        # only when the folder asks for packages, which then come first on PATH.
        dependencies=dependencies if is_python or dependencies.source else None,
    )


#: files that make a task what it is, besides task.yaml
_DEFINING_FILES = frozenset((*DEFAULT_ENTRYPOINTS, *DEPENDENCY_FILES))


def _check_confined(name: str, folder: Path, path: Path) -> None:
    """Refuse a symlink that leads out of the data directory (`/etc/passwd` as task.py).

    Only symlinks are resolved (one lstat for anything else), so loading ten thousand
    folders costs no more than it did.
    """
    if not os.path.islink(path):
        return
    data_dir = _real_path(str(folder.parent.parent))
    target = os.path.realpath(path)
    if target == data_dir or target.startswith(data_dir + os.sep):
        return
    what = "the task folder" if path == folder else path.name
    raise TaskConfigError(
        name,
        path,
        f"{what} is a symlink leading out of the data directory (to {target!r}); "
        "copy it in, or mount it inside the data directory",
    )


@functools.lru_cache(maxsize=8)
def _real_path(path: str) -> str:
    return os.path.realpath(path)


def _with_shell_script(folder: Path, present: frozenset[str]) -> set[str]:
    # task.sh is looked for only when there is no task.py, as the entrypoint order says.
    if "task.py" in present or not os.path.isfile(os.path.join(folder, "task.sh")):
        return set(present)
    return {*present, "task.sh"}


def _command(name: str, folder: Path, spec: TaskSpec, files: set[str]) -> tuple[str, ...]:
    if spec.entrypoint:
        return command_for(_entrypoint(name, folder, spec.entrypoint))
    for candidate in DEFAULT_ENTRYPOINTS:
        if candidate in files:
            return command_for(candidate)
    raise TaskConfigError(
        name, folder, "has no task.py or task.sh, and task.yaml names no `entrypoint`"
    )


def _entrypoint(name: str, folder: Path, entrypoint: str) -> str:
    file = folder / TASK_FILE
    # A path with a NUL makes every os call raise ValueError rather than OSError.
    if "\x00" in entrypoint:
        raise TaskConfigError(name, file, "contains a NUL character", "entrypoint")
    try:
        entry, home = (folder / entrypoint).resolve(), folder.resolve()
        is_file = entry.is_file()
    except (OSError, RuntimeError) as error:  # RuntimeError: pathlib's symlink loop
        raise TaskConfigError(name, file, f"cannot be followed: {error}", "entrypoint") from None
    if not entry.is_relative_to(home):
        raise TaskConfigError(name, file, "must stay inside the task folder", "entrypoint")
    if not is_file:
        raise TaskConfigError(name, file, f"{entrypoint!r} does not exist", "entrypoint")
    return entry.relative_to(home).as_posix()


def command_for(entry: str) -> tuple[str, ...]:
    """The argv that runs an entrypoint (relative to the task folder, which is the cwd)."""
    if entry.endswith(".py"):
        return (PYTHON, entry)
    if entry.endswith(".sh"):
        return ("bash", entry)
    return (f"./{entry}",)
