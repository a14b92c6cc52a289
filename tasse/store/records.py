"""What the writer carries: runs, fire times and pauses as operations, their journal form,
coalescing.

An operation is what a caller handed over at once: some runs (each in its newest state),
fire times to save and forget, or tasks paused and resumed. In the journal each is one
JSON line; in a batch, the newest state of each run, of each schedule's fire time and of
each task's pause wins.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tasse.models import Run
from tasse.store.fire_times import FireTime
from tasse.store.pauses import Pause

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runs:
    """Runs to write, each as it was when handed over."""

    runs: tuple[Run, ...]


@dataclass(frozen=True)
class FireTimeChanges:
    """Fire times to save (or replace), and schedules whose fire times are dropped."""

    save: Mapping[str, FireTime]
    forget: tuple[str, ...] = ()


@dataclass(frozen=True)
class PauseChanges:
    """Tasks paused (their Pause) or resumed (None), by name."""

    changes: Mapping[str, Pause | None]


#: one operation handed to the writer
Op = Runs | FireTimeChanges | PauseChanges


@dataclass(frozen=True)
class Coalesced:
    """A batch as one write: the newest state of each run, fire time and pause in it."""

    runs: list[Run]
    saves: dict[str, FireTime]
    forgets: list[str]
    pauses: dict[str, Pause | None]


def coalesce(batch: Sequence[Op]) -> Coalesced:
    """The newest state of each run, each schedule's fire time and each pause in a batch."""
    runs: dict[str, Run] = {}
    fire_times: dict[str, FireTime | None] = {}
    pauses: dict[str, Pause | None] = {}
    for op in batch:
        if isinstance(op, Runs):
            runs.update((run.id, run) for run in op.runs)
        elif isinstance(op, PauseChanges):
            pauses.update(op.changes)
        else:
            fire_times.update(op.save)
            fire_times.update(dict.fromkeys(op.forget))
    saves = {job: time for job, time in fire_times.items() if time is not None}
    forgets = [job for job, time in fire_times.items() if time is None]
    return Coalesced(list(runs.values()), saves, forgets, pauses)


def entry_of(op: Op) -> dict[str, Any]:
    """The operation as a line of the journal."""
    if isinstance(op, Runs):
        return {"runs": [run.model_dump(mode="json") for run in op.runs]}
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
        if "runs" in entry:
            return Runs(tuple(Run.model_validate(run) for run in entry["runs"]))
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
