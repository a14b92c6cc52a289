"""The logs of a worker's runs, as the API's log routes read them.

A run's log is a file in the data folder of the node that ran it; another node relays
`GET /runs/{id}/log` and `/log/events` to that node's API (`http/proxy.py`). A worker's API
is those two routes and `/health` (`http/worker_app.py`), the same route functions a
`tasse serve` node has: they read what they need of a `Tasse` (`get_run`, `follow_log`,
`live_log`, `log_home`, `settings`, `store`, `events.closed`), and `WorkerLogs` offers
exactly that for the runs of this worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from tasse.cluster.worker import Worker
from tasse.errors import RunNotFoundError
from tasse.models import Run
from tasse.runs.live_log import Piece, follow_text
from tasse.runs.logs import follow
from tasse.settings import Settings
from tasse.store.runs import RunStore


class _Streams:
    """What the live log routes watch to end their streams when the worker stops."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    def close(self) -> None:
        """End the streams: the worker stops."""
        self.closed.set()


class WorkerLogs:
    """A worker's runs and their logs, for the log routes."""

    def __init__(self, worker: Worker):
        self.worker = worker
        self.settings: Settings = worker.settings
        self.store: RunStore = worker.store
        self.events = _Streams()

    async def get_run(self, run_id: str) -> Run:
        """The run as this worker has it (under way), else as the store has it."""
        active = self.worker.active(run_id)
        if active is not None:
            return active.run
        found = self.worker.records.pending_run(run_id)
        if found is None:
            found = await self.store.off_loop(lambda: self.store.get(run_id))
        if found is None:
            raise RunNotFoundError(run_id)
        return found

    async def follow_log(self, run_id: str, live: bool = True) -> AsyncIterator[bytes]:
        """The run's output so far; with `live`, then new output until it ends."""
        run = await self.get_run(run_id)
        active = self.worker.active(run_id) if live else None
        path = self.worker.layout.run_log(run.task, run.id)
        return follow(path, active.writer if active else None)

    async def live_log(self, run_id: str, offset: int | None) -> AsyncIterator[Piece]:
        """The run's output as text from `offset` (None: its last 256 KiB) until it ends."""
        run = await self.get_run(run_id)
        active = self.worker.active(run_id)
        return follow_text(
            self.worker.layout.run_log(run.task, run.id),
            active.writer if active else None,
            offset,
            self.events.closed,
            self.settings.events_heartbeat,
        )

    async def log_home(self, run_id: str) -> tuple[str, str | None] | None:
        """None: the logs of this worker's runs are here (it relays nothing)."""
        return None
