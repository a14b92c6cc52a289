"""`tasse pause NAME | resume NAME`: through the running server's API, or the store when none runs.

The server holding the data folder keeps the pauses in memory, so a change must reach it:
`POST /tasks/{name}/pause` at its listen address, with its token. With no server on the
folder, the change goes to the store directly, under the folder's lock (so no server
starts meanwhile), after what the journal holds: the next start loads it.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from tasse.cli.remote import ask_server, server_options
from tasse.errors import DataFolderBusyError, TaskNameError, TaskNotFoundError, TasseError
from tasse.models import PauseRequest
from tasse.settings import Settings
from tasse.store.data_lock import DataLock
from tasse.store.journal import Journal
from tasse.store.pauses import Pause, PauseTable
from tasse.store.runs import RunStore, check_store
from tasse.store.writer import RecordWriter
from tasse.values import TASK_NAME_PATTERN


def add_pause_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register `tasse pause` and `tasse resume`."""
    server = server_options()
    pause = commands.add_parser(
        "pause", parents=[common, server], help="pause a task: its fires are recorded as skipped"
    )
    pause.add_argument("name")
    pause.add_argument("--reason", help="why, shown with the task")
    pause.set_defaults(handler=_pause)
    resume = commands.add_parser("resume", parents=[common, server], help="resume a paused task")
    resume.add_argument("name")
    resume.set_defaults(handler=_resume)


def _pause(settings: Settings, args: argparse.Namespace) -> int:
    try:
        reason = PauseRequest(reason=args.reason or None).reason
    except ValidationError as error:
        raise TasseError(f"--reason: {error.errors()[0]['msg']}") from None
    body = {"reason": reason} if reason else {}
    kept = _change(settings, args.name, "pause", body, Pause(datetime.now(UTC), reason))
    since = kept.paused_at.isoformat(timespec="seconds") if kept else "-"
    why = f": {kept.reason}" if kept and kept.reason else ""
    print(f"task {args.name!r} paused since {since}{why}")
    return 0


def _resume(settings: Settings, args: argparse.Namespace) -> int:
    _change(settings, args.name, "resume", {}, None)
    print(f"task {args.name!r} resumed")
    return 0


def _change(
    settings: Settings, name: str, action: str, body: dict[str, Any], pause: Pause | None
) -> Pause | None:
    """The task's pause after the change: as the server answers, or as the store has it."""
    if not re.match(TASK_NAME_PATTERN, name):
        raise TaskNameError(name)
    lock = DataLock(settings.data_dir)
    try:
        lock.acquire()
    except DataFolderBusyError:
        task = ask_server(settings, f"/tasks/{quote(name)}/{action}", body)
        at = task.get("paused_at")
        return Pause(datetime.fromisoformat(at), task.get("paused_reason")) if at else None
    try:
        print(
            f"tasse: no server runs on {lock.folder}: the store is changed, for its next start",
            file=sys.stderr,
        )
        check_store(settings.store_url, settings.store_schema_name, settings.store_table_name)
        return asyncio.run(_change_store(settings, name, pause))
    finally:
        lock.release()


async def _change_store(settings: Settings, name: str, pause: Pause | None) -> Pause | None:
    store = RunStore(settings.store_url, settings.store_schema_name, settings.store_table_name)
    try:
        return await store.off_loop(lambda: _write(settings, store, name, pause), "the change")
    finally:
        store.close()


def _write(settings: Settings, store: RunStore, name: str, pause: Pause | None) -> Pause | None:
    # The journal first, as a server's start does: a pause or resume it kept is older.
    RecordWriter(store, Journal(settings.journal_path, settings.journal_max_bytes)).replay()
    if not (settings.tasks_dir / name).is_dir() and store.get_task(name) is None:
        raise TaskNotFoundError(name, f"no folder {str(settings.tasks_dir / name)!r}, none defined")
    table = PauseTable(store)
    current = table.load().get(name)
    if pause is None or current is None:  # pausing a paused task keeps its pause
        table.save({name: pause})
        current = pause
    return current
