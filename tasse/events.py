"""Live events: what just changed (a run's state, a task), kept a while, told to subscribers.

`EventHub.publish` runs on the event loop at every run state change, so it only appends:
to the ring buffer of the last `KEPT` events (for clients that resume with the last id
they saw) and to each interested subscriber's bounded queue. It never waits.

Sending is what costs: a system call per stream and batch, a third of a millisecond each
on a loaded machine. So subscribers are woken once per `WINDOW` at most, with everything
queued since (a hundred streams cost a hundred sends per window, not per event; an event
after a quiet window goes at once), and
`SLICE` at a time, one turn of the loop each, so that a fire due meanwhile waits for a
few sends, not for all of them.

A subscriber whose queue is full is dropped: its stream ends, and its client reconnects
with its last id and resumes from the buffer, so one slow reader never slows the rest.

Ids increase by one per event and start at the hub's creation time in microseconds: an
id from before a restart is older than every id of this process, and gets `reset`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from tasse.models import EnvInfo, Run

logger = logging.getLogger(__name__)

#: events kept for clients that resume
KEPT = 10_000
#: events a subscriber may have waiting before it is dropped
QUEUED = 1_000
#: events handed out by one `Subscription.take` (a long resume comes in several)
BATCH = 500
#: seconds events wait, at most, to be sent together
WINDOW = 0.5
#: subscribers woken in one turn of the loop
SLICE = 5

# One line of JSON: line breaks inside strings are escaped, so an event is one `data:` line.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Event:
    """One change: its id, type, time, data (a JSON object's text), the tasks it concerns."""

    __slots__ = ("_frame", "at", "id", "payload", "tasks", "type")

    def __init__(self, id: int, type: str, at: float, payload: str, tasks: Collection[str]):
        self.id, self.type, self.at, self.payload, self.tasks = id, type, at, payload, tasks
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        """The event's SSE lines (`data:` is JSON: id, type, at, the data), encoded once."""
        if self._frame is None:
            at = datetime.fromtimestamp(self.at, UTC).isoformat()
            rest = self.payload[1:]  # the data's fields and the closing brace
            head = f'{{"id":{self.id},"type":"{self.type}","at":"{at}"'
            data = head + ("," + rest if rest != "}" else rest)
            frame = f"id: {self.id}\nevent: {self.type}\ndata: {data}\n\n"
            # "replace": a lone surrogate (from bytes a message could not decode) is a "?"
            self._frame = frame.encode("utf-8", "replace")
        return self._frame


@dataclass(frozen=True)
class Interest:
    """Which events a subscriber wants: some types (`task` means every `task.*`), one task."""

    types: frozenset[str] = frozenset()
    task: str | None = None

    @property
    def everything(self) -> bool:
        """True when no filter is set (the common case, checked without a call)."""
        return not self.types and self.task is None

    def wants(self, event: Event) -> bool:
        """Whether this event passes the filters."""
        if self.types and not (
            event.type in self.types or event.type.partition(".")[0] in self.types
        ):
            return False
        return self.task is None or self.task in event.tasks


class Subscription:
    """One subscriber's queue: `take` what is there, `wait` for more; `ended` once dropped."""

    def __init__(self, hub: EventHub, interest: Interest, backlog: list[Event], limit: int):
        self.interest = interest
        #: no filter: every event is wanted (checked at each publish without a call)
        self.everything = interest.everything
        self._hub = hub
        self._backlog = deque(backlog)  # resumed events first; the limit is for live ones
        self._queue: deque[Event] = deque()
        self._limit = limit
        self._ready = asyncio.Event()
        self.ended = False
        #: dropped because its queue was full (the client was too slow)
        self.dropped = False
        if backlog:
            self._ready.set()

    def offer(self, event: Event) -> bool:
        """Queue a live event; False when the queue is full (the hub then drops it)."""
        if len(self._queue) >= self._limit:
            if self._ready.is_set():
                return False  # woken for what waits, and still has not taken it: too slow
            self._ready.set()  # a burst filled it within the window: wake it now instead
        self._queue.append(event)
        return True

    def wake(self) -> bool:
        """Wake the waiter if events wait for it (the hub calls it once per window)."""
        if not self._queue or self._ready.is_set():
            return False
        self._ready.set()
        return True

    def take(self) -> list[Event]:
        """The events waiting now, oldest first (at most `BATCH`), without waiting."""
        source = self._backlog or self._queue
        count = min(len(source), BATCH)
        events = [source.popleft() for _ in range(count)]
        if not (self._backlog or self._queue):
            self._ready.clear()
        return events

    async def wait(self, timeout: float) -> bool:
        """Wait until an event waits or the subscription ends; False after `timeout` s."""
        try:
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        except TimeoutError:
            return False
        return True

    @property
    def caught_up_id(self) -> int | None:
        """The hub's newest id while nothing waits here: every event up to it was taken."""
        return None if self._backlog or self._queue else self._hub.last_id

    def end(self, dropped: bool = False) -> None:
        """End the subscription (its waiter wakes); the hub forgets it."""
        self.dropped = self.dropped or dropped
        self.ended = True
        self._ready.set()
        self._hub.unsubscribe(self)


class EventHub:
    """Publishes events to subscribers and keeps the last `kept` for resuming clients."""

    def __init__(self, kept: int = KEPT, queued: int = QUEUED, window: float = WINDOW):
        self._kept: deque[Event] = deque(maxlen=kept)
        self._queued = queued
        self._window = window
        self._waking: asyncio.TimerHandle | None = None
        self._woke_at = float("-inf")  # the loop's time of the last wake
        self._next_id = time.time_ns() // 1000
        self._subscribers: dict[Subscription, None] = {}  # in the order they came
        #: set once the hub is closed (the server stops): live streams end
        self.closed = asyncio.Event()
        #: subscribers dropped so far because they fell behind
        self.dropped = 0

    @property
    def last_id(self) -> int:
        """The newest event's id (one below the first when there is none yet)."""
        return self._next_id - 1

    @property
    def subscribers(self) -> int:
        """Subscriptions open now."""
        return len(self._subscribers)

    def publish(self, type: str, data: Mapping[str, Any], tasks: Collection[str] = ()) -> Event:
        """Record an event and queue it for every interested subscriber; never waits."""
        return self.publish_json(type, _encode(data), tasks)

    def publish_json(self, type: str, payload: str, tasks: Collection[str] = ()) -> Event:
        """`publish` with the data as a JSON object's text already (a run's, from pydantic)."""
        event = Event(self._next_id, type, time.time(), payload, tasks)
        self._next_id += 1
        self._kept.append(event)
        behind = [
            subscriber
            for subscriber in self._subscribers
            if (subscriber.everything or subscriber.interest.wants(event))
            and not subscriber.offer(event)
        ]
        for subscriber in behind:
            self.dropped += 1
            logger.info(
                "events: a subscriber fell %d events behind and was dropped (it resumes "
                "from its last event when it reconnects)",
                self._queued,
            )
            subscriber.end(dropped=True)
        if self._waking is None and self._subscribers:
            loop = asyncio.get_running_loop()
            self._waking = loop.call_at(max(loop.time(), self._woke_at + self._window), self._wake)
        return event

    def _wake(self) -> None:
        self._waking = None
        self._woke_at = asyncio.get_running_loop().time()
        self._wake_some(iter(list(self._subscribers)))

    def _wake_some(self, rest: Iterator[Subscription]) -> None:
        woken = 0
        for subscriber in rest:
            woken += subscriber.wake()
            if woken == SLICE:
                asyncio.get_running_loop().call_soon(self._wake_some, rest)
                return

    def subscribe(
        self, interest: Interest = Interest(), last_id: int | None = None
    ) -> Subscription:
        """Live events from now, after those since `last_id` (or `reset`, if not kept)."""
        if last_id is None:
            backlog = []
        elif self._resumable(last_id):
            oldest = self._kept[0].id if self._kept else self._next_id
            missed = itertools.islice(self._kept, max(0, last_id + 1 - oldest), None)
            backlog = [event for event in missed if interest.wants(event)]
        else:
            backlog = [self._reset(last_id)]
        subscription = Subscription(self, interest, backlog, self._queued)
        if self.closed.is_set():
            subscription.end()
        else:
            self._subscribers[subscription] = None
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop queueing events for this subscription."""
        self._subscribers.pop(subscription, None)

    def close(self) -> None:
        """End every subscription, and those made later at once (the server stops)."""
        self.closed.set()
        if self._waking is not None:
            self._waking.cancel()
        for subscription in list(self._subscribers):
            subscription.end()

    # -- what Tasse publishes (each event type in one place) --------------------------------

    def run_changed(self, run: Run) -> None:
        """`run`: a run was recorded in a new state (queued, running, an outcome)."""
        # Encoded now: the dispatcher goes on changing the same Run object.
        try:
            snapshot = run.model_dump_json()
        except ValueError:  # pydantic refuses a lone surrogate in its text; json takes it
            snapshot = _encode(run.model_dump(mode="json"))
        self.publish_json("run", f'{{"task":{_encode(run.task)},"run":{snapshot}}}', (run.task,))

    def task_added(self, name: str) -> None:
        """`task.added`: a new task (from a folder, the API or a seed file)."""
        self.publish("task.added", {"task": name}, (name,))

    def task_changed(
        self, name: str, what: Literal["definition", "error"], error: str | None = None
    ) -> None:
        """`task.changed`: its definition changed, or its error appeared, changed or went."""
        data = {"task": name, "what": what} | ({"error": error} if what == "error" else {})
        self.publish("task.changed", data, (name,))

    def task_removed(self, name: str) -> None:
        """`task.removed`: the task is gone."""
        self.publish("task.removed", {"task": name}, (name,))

    def env_changed(self, names: list[str], env: EnvInfo) -> None:
        """`task.env`: the environment these tasks share began or ended a build."""
        self.publish("task.env", {"tasks": names, "env": env.model_dump(mode="json")}, names)

    # -- internals -------------------------------------------------------------------------

    def _resumable(self, last_id: int) -> bool:
        oldest = self._kept[0].id if self._kept else self._next_id
        return oldest - 1 <= last_id <= self.last_id

    def _reset(self, last_id: int) -> Event:
        # Not kept: it is for this client only, and carries the newest id, so that the
        # client, once reloaded, resumes from now.
        reason = f"event {last_id} is no longer kept (or is from before a restart): reload"
        return Event(self.last_id, "reset", time.time(), _encode({"reason": reason}), ())
