"""What the writer carries: runs and fire times as operations, their journal form, coalescing.

An operation is what a caller handed over at once: some runs (each in its newest state), or
fire times to save and forget. In the journal each is one JSON line; in a batch, the newest
state of each run and of each schedule's fire time wins.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tasse.models import Run
from tasse.store.fire_times import FireTime

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


#: one operation handed to the writer
Op = Runs | FireTimeChanges


def coalesce(batch: Sequence[Op]) -> tuple[list[Run], dict[str, FireTime], list[str]]:
    """The newest state of each run and each schedule's fire time in a batch."""
    runs: dict[str, Run] = {}
    fire_times: dict[str, FireTime | None] = {}
    for op in batch:
        if isinstance(op, Runs):
            runs.update((run.id, run) for run in op.runs)
        else:
            fire_times.update(op.save)
            fire_times.update(dict.fromkeys(op.forget))
    saves = {job: time for job, time in fire_times.items() if time is not None}
    forgets = [job for job, time in fire_times.items() if time is None]
    return list(runs.values()), saves, forgets


def entry_of(op: Op) -> dict[str, Any]:
    """The operation as a line of the journal."""
    if isinstance(op, Runs):
        return {"runs": [run.model_dump(mode="json") for run in op.runs]}
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
        saves = {
            job: (print_, datetime.fromisoformat(at) if at else None)
            for job, (print_, at) in entry.get("fire_times", {}).items()
        }
        return FireTimeChanges(saves, tuple(entry.get("forget", ())))
    except (ValueError, TypeError, KeyError) as error:
        logger.error("a journal entry cannot be read and is skipped: %s", error)
        return None
