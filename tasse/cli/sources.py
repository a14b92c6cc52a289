"""Where the CLI's reading commands get their answers: a running server, or the data folder.

A server that answers is asked (it knows what is running and what the writer still
holds); with none, the store and the log files are read directly — SQLite is readable
while a server runs too, so a server that holds the folder but answers at another address
costs only the freshest records. `--url` given means "that server": then it must answer.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from tasse.cli.listeners import listens_on
from tasse.cli.server_api import ServerApi, ServerUnreachableError, default_url
from tasse.models import Run, RunStatus, TaskInfo
from tasse.settings import Settings
from tasse.store.data_lock import LOCK_FILE


@dataclass(frozen=True)
class Skipped:
    """Part of a log that is not shown (the start of a long live log); `note` says what."""

    note: str


@dataclass(frozen=True)
class Ended:
    """The end of a followed log: the run as it was then (final, unless no one can end it)."""

    run: Run


#: what following a log yields: its text as it is written, notes of what is skipped, the end
LogPiece = str | Skipped | Ended


class Source(Protocol):
    """Tasks, runs and logs, from wherever they are read."""

    #: said to the user once, on stderr, if anything: where the answers come from
    note: str | None

    def tasks(self) -> list[TaskInfo]:
        """Every task, by name."""

    def runs(self, task: str, status: RunStatus | None, limit: int) -> list[Run]:
        """The task's runs, newest first; TaskNotFoundError if there is no such task."""

    def run(self, run_id: str) -> Run:
        """One run; RunNotFoundError if there is none."""

    def log(self, run: Run) -> bytes:
        """The run's whole output so far (b"" when it has none)."""

    def follow(self, run: Run) -> Iterator[LogPiece]:
        """The run's output as it is written, until the run ends; then `Ended`."""

    def close(self) -> None:
        """Let go of what was opened (connections)."""


def pick_source(settings: Settings, url: str | None) -> Source:
    """The server at `url`, which must answer; without one, the server holding the data
    folder if it answers at its listen address, else the data folder itself."""
    from tasse.cli.folder_source import FolderSource
    from tasse.cli.server_source import ServerSource

    token = settings.api_token.get_secret_value() if settings.api_token else None
    if url is not None:
        api = ServerApi(url, token)
        api.check()  # unreachable: the one-line error, not a silent fallback
        return ServerSource(api)
    # Only the folder's own server: another one at the default address serves other tasks.
    holder = server_pid(settings)
    if holder is None:
        return FolderSource(settings, served=False)
    api = ServerApi(default_url(settings), token)
    try:
        if listens_on(holder, settings.port) is False:
            raise ServerUnreachableError(api.url, f"pid {holder} does not listen there")
        api.check()
    except ServerUnreachableError as error:
        print(
            f"tasse: the server holding {settings.data_dir.absolute()} does not answer: {error};"
            " reading the data folder (give the server's address with --url)",
            file=sys.stderr,
        )
        return FolderSource(settings, served=True)
    return ServerSource(api)


def server_pid(settings: Settings) -> int | None:
    """The pid of a live server holding the data folder, if one does.

    Read from the lock file, not by taking the lock: a reading command that took it even
    for a moment could make a server starting then refuse the folder.
    """
    try:
        text = (settings.data_dir / LOCK_FILE).read_text(errors="replace").strip()
    except OSError:
        return None
    if not text.isdigit():
        return None  # emptied by the server that released it
    pid = int(text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # killed outright: the kernel dropped its lock, the pid stayed
    except PermissionError:
        pass  # alive, another user's (a server in a container)
    return pid


def source_options() -> argparse.ArgumentParser:
    """The flags of every reading command: which server, its token, and JSON output."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--url",
        help="the server to ask, like http://127.0.0.1:4243 (default: the server holding the"
        " data folder, at its listen address; with none, the data folder is read)",
    )
    options.add_argument("--api-token-file", help="file with the server's API token")
    options.add_argument("--json", action="store_true", help="JSON for scripts, not a table")
    return options


@contextmanager
def opened(settings: Settings, args: argparse.Namespace) -> Iterator[Source]:
    """The source the command's flags pick, closed afterwards."""
    source = pick_source(settings, args.url)
    if source.note:
        print(f"tasse: {source.note}", file=sys.stderr)
    try:
        yield source
    finally:
        source.close()
