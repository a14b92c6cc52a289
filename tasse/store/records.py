"""What the writer carries: runs, fire times, pauses and notifications as operations, their
journal form, coalescing.

An operation is what a caller handed over at once: some runs (each in its newest state,
with the notifications their outcomes caused), fire times to save and forget, tasks paused
and resumed, or notifications' delivery states. In the journal each is one JSON line; in a
batch, the newest state of each run, of each schedule's fire time, of each task's pause and
of each notification wins (a notification's final state is never undone: `outbox.newest`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tasse.models import Run
from tasse.store.fire_times import FireTime
from tasse.store.outbox import Notice, newest, notice_entry, notice_of_entry
from tasse.store.pauses import Pause

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runs:
    """Runs to write, each as it was when handed over, and the notifications they caused."""

    runs: tuple[Run, ...]
    #: written in the same write as the runs (retried together until both are in): an
    #: outcome and the message it causes are never one without the other
    notices: tuple[Notice, ...] = ()


@dataclass(frozen=True)
class FireTimeChanges:
    """Fire times to save (or replace), and schedules whose fire times are dropped."""

    save: Mapping[str, FireTime]
    forget: tuple[str, ...] = ()


@dataclass(frozen=True)
class PauseChanges:
    """Tasks paused (their Pause) or resumed (None), by name."""

    changes: Mapping[str, Pause | None]


@dataclass(frozen=True)
class Notices:
    """Notifications' states to write (one not caused by a run, a delivery attempt)."""

    notices: tuple[Notice, ...]


#: one operation handed to the writer
Op = Runs | FireTimeChanges | PauseChanges | Notices


@dataclass(frozen=True)
class Coalesced:
    """A batch as one write: the newest state of each run, fire time, pause and notice in it."""

    runs: list[Run]
    saves: dict[str, FireTime]
    forgets: list[str]
    pauses: dict[str, Pause | None]
    notices: list[Notice]


def coalesce(batch: Sequence[Op]) -> Coalesced:
    """The newest state of each run, schedule's fire time, pause and notice in a batch."""
    runs: dict[str, Run] = {}
    fire_times: dict[str, FireTime | None] = {}
    pauses: dict[str, Pause | None] = {}
    notices: dict[str, Notice] = {}
    for op in batch:
        if isinstance(op, Runs | Notices):
            for notice in op.notices:
                notices[notice.id] = newest(notices.get(notice.id), notice)
        if isinstance(op, Runs):
            runs.update((run.id, run) for run in op.runs)
        elif isinstance(op, PauseChanges):
            pauses.update(op.changes)
        elif isinstance(op, FireTimeChanges):
            fire_times.update(op.save)
            fire_times.update(dict.fromkeys(op.forget))
    saves = {job: time for job, time in fire_times.items() if time is not None}
    forgets = [job for job, time in fire_times.items() if time is None]
    return Coalesced(list(runs.values()), saves, forgets, pauses, list(notices.values()))


def entry_of(op: Op) -> dict[str, Any]:
    """The operation as a line of the journal."""
    if isinstance(op, Runs):
        entry: dict[str, Any] = {"runs": [run.model_dump(mode="json") for run in op.runs]}
        if op.notices:
            entry["notices"] = [notice_entry(notice) for notice in op.notices]
        return entry
    if isinstance(op, Notices):
        return {"notices": [notice_entry(notice) for notice in op.notices]}
    if isinstance(op, PauseChanges):
        return {
            "pauses": {
                name: None if pause is None else [pause.paused_at.isoformat(), pause.reason]
                for name, pause in op.changes.items()
            }
        }
    return {
        "fire_times": {
            job: [print_, at.isoformat() if at else None] for job, (print_, at) in op.save.items()
        },
        "forget": list(op.forget),
    }


def op_from_entry(entry: dict[str, Any]) -> Op | None:
    """The operation a journal line holds (None for one that cannot be read)."""
    try:
        notices = tuple(notice_of_entry(notice) for notice in entry.get("notices", ()))
        if "runs" in entry:
            return Runs(tuple(Run.model_validate(run) for run in entry["runs"]), notices)
        if "notices" in entry:
            return Notices(notices)
        if "pauses" in entry:
            return PauseChanges({name: _pause_of(v) for name, v in entry["pauses"].items()})
        saves = {
            job: (print_, datetime.fromisoformat(at) if at else None)
            for job, (print_, at) in entry.get("fire_times", {}).items()
        }
        return FireTimeChanges(saves, tuple(entry.get("forget", ())))
    except (ValueError, TypeError, KeyError) as error:
        logger.error("a journal entry cannot be read and is skipped: %s", error)
        return None


def _pause_of(value: list[Any] | None) -> Pause | None:
    """A pause as the journal holds it: `[paused_at, reason]`, or null for a resume."""
    if value is None:
        return None
    paused_at, reason = value
    return Pause(datetime.fromisoformat(paused_at), reason)
