"""The event hub: ids, the exact event format, resuming, `reset`, dropping a slow subscriber."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from datetime import UTC, datetime

import pytest

from tasse.events import SLICE, EventHub, Interest
from tasse.models import EnvInfo, EnvStatus, Run, RunStatus, RunTrigger

pytestmark = pytest.mark.anyio

RUN = Run(
    id="20261122-101500-123456-9f3a1c",
    task="report",
    trigger=RunTrigger.manual,
    status=RunStatus.running,
    scheduled_at=datetime(2026, 11, 22, 10, 15, tzinfo=UTC),
    started_at=datetime(2026, 11, 22, 10, 15, 0, 123456, tzinfo=UTC),
)


def data_of(frame: bytes) -> dict[str, object]:
    """The JSON of a frame's one `data:` line, after checking the frame's other lines."""
    lines = frame.decode().split("\n")
    assert lines[-2:] == ["", ""]  # a blank line ends the event
    assert lines[0].startswith("id: ")
    assert lines[1].startswith("event: ")
    assert lines[2].startswith("data: ")
    assert len(lines) == 5  # one data line: JSON without raw line breaks
    data: dict[str, object] = json.loads(lines[2].removeprefix("data: "))
    assert data["id"] == int(lines[0].removeprefix("id: "))
    assert data["type"] == lines[1].removeprefix("event: ")
    return data


async def test_each_type_has_its_documented_form() -> None:
    hub = EventHub(window=0)
    subscription = hub.subscribe()
    hub.run_changed(RUN)
    hub.task_added("report")
    hub.task_changed("report", "definition")
    hub.task_changed("report", "error", "task.yaml: scheduler.hour: 25 is out of range")
    hub.task_removed("report")
    hub.env_changed(["report", "daily"], EnvInfo(status=EnvStatus.building, hash="2d8754af"))
    await asyncio.sleep(0)
    events = [data_of(event.frame) for event in subscription.take()]
    for event in events:
        assert datetime.fromisoformat(str(event.pop("at"))).tzinfo is not None
    first = events[0]["id"]
    assert isinstance(first, int)
    assert [event.pop("id") for event in events] == list(range(first, first + 6))
    assert events[0] == {"type": "run", "task": "report", "run": RUN.model_dump(mode="json")}
    assert events[1:5] == [
        {"type": "task.added", "task": "report"},
        {"type": "task.changed", "task": "report", "what": "definition"},
        {
            "type": "task.changed",
            "task": "report",
            "what": "error",
            "error": "task.yaml: scheduler.hour: 25 is out of range",
        },
        {"type": "task.removed", "task": "report"},
    ]
    env = EnvInfo(status=EnvStatus.building, hash="2d8754af").model_dump(mode="json")
    assert events[5] == {"type": "task.env", "tasks": ["report", "daily"], "env": env}


async def test_ids_of_a_later_hub_are_above_every_id_of_an_earlier_one() -> None:
    earlier = EventHub()
    for _ in range(1000):
        earlier.task_added("x")
    await asyncio.sleep(0.001)
    later = EventHub()
    assert later.last_id + 1 > earlier.last_id
    subscription = later.subscribe(last_id=earlier.last_id)
    assert [event.type for event in subscription.take()] == ["reset"]


async def test_resuming_gives_exactly_the_missed_events_then_live_ones() -> None:
    hub = EventHub(window=0)
    seen = [hub.publish("task.added", {"task": f"t{i}"}, (f"t{i}",)) for i in range(5)]
    subscription = hub.subscribe(last_id=seen[1].id)
    hub.publish("task.removed", {"task": "t0"}, ("t0",))
    await asyncio.sleep(0)
    first, second = subscription.take(), subscription.take()
    assert [event.id for event in first] == [e.id for e in seen[2:]]
    assert [event.type for event in second] == ["task.removed"]
    assert hub.subscribe(last_id=hub.last_id).take() == []  # missed nothing


async def test_an_id_no_longer_kept_or_unknown_gets_reset_with_the_newest_id() -> None:
    hub = EventHub(kept=3)
    events = [hub.publish("task.added", {"task": "t"}) for _ in range(5)]
    assert hub.subscribe(last_id=events[1].id).take()[0].type == "task.added"  # still kept
    for too_old in (events[0].id, 1, hub.last_id + 1):
        (reset,) = hub.subscribe(last_id=too_old).take()
        assert reset.type == "reset"
        assert reset.id == hub.last_id
        assert "reload" in str(data_of(reset.frame)["reason"])


async def test_filters_by_type_family_exact_type_and_task() -> None:
    hub = EventHub(window=0)
    tasks = hub.subscribe(Interest(frozenset({"task"})))
    removals = hub.subscribe(Interest(frozenset({"task.removed", "run"})))
    one = hub.subscribe(Interest(task="report"))
    hub.run_changed(RUN)
    hub.task_added("daily")
    hub.task_removed("report")
    hub.env_changed(["daily", "report"], EnvInfo())
    await asyncio.sleep(0)
    assert [e.type for e in tasks.take()] == ["task.added", "task.removed", "task.env"]
    assert [e.type for e in removals.take()] == ["run", "task.removed"]
    assert [e.type for e in one.take()] == ["run", "task.removed", "task.env"]
    # A filtered resume skips what the filter leaves out.
    again = hub.subscribe(Interest(frozenset({"run"})), last_id=hub.last_id - 4)
    assert [e.type for e in again.take()] == ["run"]


async def test_a_full_queue_drops_that_subscriber_only() -> None:
    hub = EventHub(queued=3, window=0)
    slow, fast = hub.subscribe(), hub.subscribe()
    for number in range(3):
        hub.task_added(f"t{number}")
        assert len(fast.take()) == 1
    await asyncio.sleep(0.01)  # both are woken; only `fast` takes what waits
    assert not slow.ended
    hub.task_added("t3")  # the fourth waiting event: one too many
    assert slow.ended
    assert slow.dropped
    assert not fast.ended
    assert [e.type for e in fast.take()] == ["task.added"]
    assert hub.subscribers == 1
    assert hub.dropped == 1
    # What it had is still there to take; then it reconnects and resumes.
    assert len(slow.take()) == 3
    resumed = hub.subscribe(last_id=hub.last_id - 1)
    assert [e.type for e in resumed.take()] == ["task.added"]


async def test_a_burst_beyond_the_queue_wakes_a_subscriber_rather_than_dropping_it() -> None:
    hub = EventHub(queued=3, window=10)
    subscription = hub.subscribe()
    for number in range(4):  # within one window, before it could take anything
        hub.task_added(f"t{number}")
    assert not subscription.ended
    assert await subscription.wait(0.01)  # woken at once, not after the window
    assert len(subscription.take()) == 4
    for number in range(4):
        hub.task_added(f"again{number}")  # the fourth wakes it again
    assert not subscription.ended
    hub.task_added("more")  # woken, and it took nothing: too slow
    assert subscription.dropped


async def test_an_event_after_a_quiet_time_goes_at_once_then_one_wake_per_window() -> None:
    hub = EventHub(window=0.2)
    subscription = hub.subscribe()
    began = time.monotonic()
    hub.task_added("first")
    assert await subscription.wait(5)
    assert time.monotonic() - began < 0.1  # nothing was sent for a while: at once
    assert len(subscription.take()) == 1
    for number in range(10):  # what follows within the window waits for its end, together
        hub.task_added(f"t{number}")
    assert await subscription.wait(5)
    assert 0.15 <= time.monotonic() - began < 1
    assert len(subscription.take()) == 10
    assert not await subscription.wait(0.1)  # nothing more: a timeout


async def test_publishing_costs_microseconds_per_subscriber_and_never_waits() -> None:
    hub = EventHub(queued=100_000)
    subscriptions = [hub.subscribe() for _ in range(100)]
    began = time.perf_counter()
    for _ in range(1000):
        hub.run_changed(RUN)
    per_event = (time.perf_counter() - began) / 1000
    # About 50 µs on a slow 2-core machine: a thousand run changes a second cost the loop
    # a few per cent. The bound only catches a cost that grew by an order of magnitude.
    assert per_event < 0.001, f"{per_event * 1e6:.0f} µs per event with 100 subscribers"
    assert all(len(s.take()) == 500 for s in subscriptions)


async def test_closing_ends_every_subscription_and_later_ones_at_once() -> None:
    hub = EventHub()
    subscription = hub.subscribe()
    waiting = asyncio.ensure_future(subscription.wait(10))
    await asyncio.sleep(0)
    hub.close()
    assert await asyncio.wait_for(waiting, 1)
    assert subscription.ended
    assert not subscription.dropped
    assert hub.closed.is_set()
    assert hub.subscribe().ended
    hub.task_added("late")  # publishing after the close is harmless


async def test_text_a_message_could_not_decode_still_makes_a_valid_event() -> None:
    hub = EventHub(window=0)
    subscription = hub.subscribe()
    hub.run_changed(RUN.model_copy(update={"error": "cannot open b'\udcff.txt'"}))
    hub.task_changed("report", "error", "task.yaml: bad \udcff byte")
    await asyncio.sleep(0)
    run, task = (data_of(event.frame) for event in subscription.take())
    assert run["run"]["error"] == "cannot open b'?.txt'"  # type: ignore[index]
    assert task["error"] == "task.yaml: bad ? byte"


async def test_subscribers_are_woken_a_few_at_a_time() -> None:
    hub = EventHub(window=0)
    subscriptions = [hub.subscribe() for _ in range(SLICE * 2 + 1)]
    waiting = [asyncio.ensure_future(s.wait(10)) for s in subscriptions]
    await asyncio.sleep(0)
    hub.task_added("t")
    woken: list[int] = []
    for _ in range(8):
        await asyncio.sleep(0)  # one turn of the loop
        woken.append(sum(w.done() for w in waiting))
    # Each turn wakes a few more, so what else is due runs between them.
    assert woken[-1] == len(subscriptions)
    assert SLICE in woken
    assert all(0 <= b - a <= SLICE for a, b in itertools.pairwise(woken))
