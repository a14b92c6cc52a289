"""The overview's strips: read once, then kept current by every recorded run state."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from tasse.models import Run, RunStatus, RunTrigger
from tasse.runs.outcomes import RecentOutcomes

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def run(task: str, n: int, status: RunStatus = RunStatus.succeeded) -> Run:
    at = T0 + timedelta(minutes=n)
    return Run(
        id=f"{at:%Y%m%d-%H%M%S}-{n:06d}",
        task=task,
        trigger=RunTrigger.schedule,
        status=status,
        scheduled_at=at,
    )


class Store:
    """What the store holds, newest first, and how often it was read."""

    def __init__(self, runs: dict[str, list[Run]]):
        self.runs = runs
        self.reads: list[list[str]] = []
        self.gate: asyncio.Event | None = None

    async def read(self, names: Sequence[str], count: int) -> dict[str, list[Run]]:
        self.reads.append(list(names))
        if self.gate is not None:
            await self.gate.wait()
        return {name: self.runs.get(name, [])[:count] for name in names}


async def test_a_strip_is_read_once_then_kept_current() -> None:
    store = Store({"a": [run("a", n) for n in range(30, 0, -1)]})
    outcomes = RecentOutcomes(store.read, count=3)
    assert [r.id for r in (await outcomes.of(["a", "b"]))["a"]] == [
        r.id for r in store.runs["a"][:3]
    ]
    live = run("a", 31, RunStatus.running)
    outcomes.note(live)
    outcomes.note(run("b", 1, RunStatus.failed))
    outcomes.note(live.model_copy(update={"status": RunStatus.failed}))
    strips = await outcomes.of(["a", "b"])
    statuses = [r.status for r in strips["a"]]
    assert statuses == [RunStatus.failed, RunStatus.succeeded, RunStatus.succeeded]
    assert strips["a"][0].id == live.id
    assert len(strips["a"]) == 3
    assert [r.status for r in strips["b"]] == [RunStatus.failed]
    assert store.reads == [["a", "b"]]


async def test_a_change_during_the_read_is_not_lost() -> None:
    store = Store({"a": [run("a", 1)]})
    store.gate = asyncio.Event()
    outcomes = RecentOutcomes(store.read, count=5)
    reading = asyncio.ensure_future(outcomes.of(["a"]))
    await asyncio.sleep(0)
    outcomes.note(run("a", 2, RunStatus.missed))  # the read began before it was recorded
    store.gate.set()
    assert [r.status for r in (await reading)["a"]] == [RunStatus.missed, RunStatus.succeeded]


async def test_the_least_recently_shown_tasks_are_let_go() -> None:
    store = Store({})
    outcomes = RecentOutcomes(store.read, count=2, tasks_kept=2)
    await outcomes.of(["a", "b"])
    await outcomes.of(["a"])
    await outcomes.of(["c"])  # b was shown least recently
    await outcomes.of(["a", "b"])
    assert store.reads == [["a", "b"], ["c"], ["b"]]
