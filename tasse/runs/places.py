"""Each task's places: how many of its runs may be alive at once, and who waits for one."""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Places(Generic[T]):
    """Per task: up to `limit` holders (None: no limit), and a line of runs waiting, in order."""

    def __init__(self) -> None:
        self._holders: dict[str, list[T]] = {}
        self._waiting: dict[str, deque[T]] = {}
        self._limits: dict[str, int | None] = {}

    def has_room(self, task: str, limit: int | None) -> bool:
        """Whether a new run would hold a place at once (nobody waits, a place is free)."""
        if self._waiting.get(task):
            return False
        return limit is None or len(self._holders.get(task, ())) < limit

    def enter(self, task: str, item: T, limit: int | None, first: bool = False) -> bool:
        """Take a place (True), or join the line: at its end, or its front with `first`."""
        self._limits[task] = limit
        if self.has_room(task, limit):
            self._holders.setdefault(task, []).append(item)
            return True
        line = self._waiting.setdefault(task, deque())
        (line.appendleft if first else line.append)(item)
        return False

    def hold(self, task: str, item: T, limit: int | None) -> None:
        """Hold a place whatever the limit: a run already under way when this node took
        over the schedule (a cluster's runs on workers) counts against it."""
        self._limits.setdefault(task, limit)
        self._holders.setdefault(task, []).append(item)

    def leave(self, task: str, item: T) -> list[T]:
        """Give up a place or a spot in line; the runs that now hold a place, in order."""
        holders = self._holders.get(task, [])
        if item in holders:
            holders.remove(item)
        else:
            line = self._waiting.get(task)
            if line is not None and item in line:
                line.remove(item)
        admitted = []
        line = self._waiting.get(task)
        limit = self._limits.get(task)
        while line and (limit is None or len(holders) < limit):
            admitted.append(line.popleft())
            holders.append(admitted[-1])
        if holders:
            self._holders[task] = holders
        else:
            self._holders.pop(task, None)
        if not line:
            self._waiting.pop(task, None)
            if not holders:
                self._limits.pop(task, None)
        return admitted

    def holders(self, task: str) -> list[T]:
        """The runs holding the task's places, oldest first."""
        return list(self._holders.get(task, ()))

    def waiting(self, task: str) -> list[T]:
        """The runs waiting for a place, next first."""
        return list(self._waiting.get(task, ()))
