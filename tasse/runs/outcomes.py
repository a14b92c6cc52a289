"""The last outcomes of recently shown tasks, kept in memory for the overview's strips.

Reading 20 runs for each of a page's 50 tasks costs tens of milliseconds a page, most of
it turning rows into `Run`s; the overview asks for the same tasks again and again while
few of their runs change. `RecentOutcomes` keeps the strips of the last `tasks_kept`
tasks asked for (least recently asked dropped first), each as it was read from the store,
then kept current by every recorded run state (`note`, called where each is recorded). A
change that arrives while a task's strip is being read is applied to what the read brings.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from tasse.models import Run

#: reads the strips of these tasks from the store (pending records merged), newest first
Reader = Callable[[Sequence[str], int], Awaitable[dict[str, list[Run]]]]


class RecentOutcomes:
    """Each kept task's newest `count` runs, newest first."""

    def __init__(self, read: Reader, count: int = 20, tasks_kept: int = 1000):
        self._read = read
        self.count = count
        self._tasks_kept = tasks_kept
        self._kept: OrderedDict[str, list[Run]] = OrderedDict()
        #: changes to tasks whose strip is being read right now
        self._arriving: dict[str, list[Run]] = {}

    async def of(self, names: Sequence[str]) -> dict[str, list[Run]]:
        """The strips of these tasks: kept ones from memory, the others read once."""
        strips = {}
        for name in names:
            if name in self._kept:
                self._kept.move_to_end(name)
                strips[name] = list(self._kept[name])
        missing = [name for name in names if name not in strips]
        if missing:
            strips |= await self._read_missing(missing)
        return {name: strips[name] for name in names}

    async def _read_missing(self, names: list[str]) -> dict[str, list[Run]]:
        for name in names:
            self._arriving.setdefault(name, [])
        try:
            found = await self._read(names, self.count)
        finally:
            arrived = {name: self._arriving.pop(name, []) for name in names}
        for name in names:
            self._keep(name, found.get(name, []))
            for run in arrived[name]:
                self.note(run)
        return {name: list(self._kept.get(name, found.get(name, []))) for name in names}

    def note(self, run: Run) -> None:
        """A run was recorded in this state: its task's strip shows it."""
        arriving = self._arriving.get(run.task)
        if arriving is not None:
            arriving.append(run)
        strip = self._kept.get(run.task)
        if strip is None:
            return
        for index, shown in enumerate(strip):
            if shown.id == run.id:
                strip[index] = run
                return
        strip.insert(0, run)
        strip.sort(key=lambda r: r.id, reverse=True)
        del strip[self.count :]

    def forget(self, name: str) -> None:
        """The task is gone (or was redefined): read its strip afresh when asked."""
        self._kept.pop(name, None)

    def _keep(self, name: str, strip: list[Run]) -> None:
        self._kept[name] = strip[: self.count]
        while len(self._kept) > self._tasks_kept:
            self._kept.popitem(last=False)
