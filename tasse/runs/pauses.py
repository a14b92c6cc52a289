"""Which tasks are paused: held in memory, the truth for the running server, and kept in the
job store through the writer, so a pause taken while the store is down is journaled.

A paused task keeps its schedule (its next fire times are still computed and shown), but
each fire is recorded as `skipped` with the error `paused`, and a scheduled run or a retry
still waiting to start does not start. A manual run still runs: a person asked for it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from tasse.store.pauses import Pause, PauseTable
from tasse.store.runs import RunStore
from tasse.store.writer import RecordWriter

logger = logging.getLogger(__name__)


class PausedTasks:
    """The paused tasks by name: loaded once at start, changed by `pause` and `resume`."""

    def __init__(self, store: RunStore, records: RecordWriter):
        self._table = PauseTable(store)
        self._records = records
        self._paused: dict[str, Pause] = {}
        #: the pauses as the store had them when last read
        self._seen: dict[str, Pause] = {}

    def load(self) -> None:
        """Read the pauses from the store (at start, after the journal is replayed; blocks)."""
        self._seen = self._table.load()
        self._paused = dict(self._seen)
        if self._paused:
            logger.info("%d task(s) paused: %s", len(self._paused), ", ".join(sorted(self._paused)))

    def follow(self, stored: dict[str, Pause]) -> list[str]:
        """Take in the pauses other nodes of a cluster made or ended, from the store's
        pauses now; returns the names whose pause changed here.

        Only those change here: a pause this node took whose write has not reached the
        store yet stays (the store has not changed for that name), and takes the stored
        state once it lands (its own, by then: not returned).
        """
        seen, taken_in = self._seen, []
        for name in sorted(seen.keys() | stored.keys()):
            if seen.get(name) == (pause := stored.get(name)):
                continue
            if self._paused.get(name) != pause:  # not this node's own write, landed
                taken_in.append(name)
            if pause is None:
                self._paused.pop(name, None)
            else:
                self._paused[name] = pause
        self._seen = stored
        return taken_in

    def is_paused(self, name: str) -> bool:
        """Whether the task is paused now (a dictionary look-up: cheap on every fire)."""
        return name in self._paused

    def get(self, name: str) -> Pause | None:
        """The task's pause, if it is paused."""
        return self._paused.get(name)

    def pause(self, name: str, reason: str | None = None) -> Pause:
        """Pause the task; pausing a paused one keeps its pause as it was."""
        pause = self._paused.get(name)
        if pause is None:
            pause = self._paused[name] = Pause(datetime.now(UTC), reason)
            self._records.save_pauses({name: pause})
            logger.info("task %s paused%s", name, f" ({reason})" if reason else "")
        return pause

    def resume(self, name: str) -> None:
        """Resume the task; resuming one that is not paused changes nothing."""
        if self._paused.pop(name, None) is not None:
            self._records.save_pauses({name: None})
            logger.info("task %s resumed", name)
