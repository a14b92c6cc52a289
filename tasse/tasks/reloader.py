"""Keeps loaded tasks in step with their folders: file events, debounced, and a periodic rescan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from tasse.settings import Settings
from tasse.tasks.registry import RescanReport
from tasse.tasks.watcher import TasksWatcher

logger = logging.getLogger(__name__)

#: rescans the named task folders, or all of them for None
Rescan = Callable[[set[str] | None], Awaitable[RescanReport]]


class Reloader:
    """Turns file events into targeted rescans, and polls for filesystems without events."""

    def __init__(self, settings: Settings, rescan: Rescan):
        self._settings = settings
        self._rescan = rescan
        self._watcher: TasksWatcher | None = None
        self._pending: set[str] = set()
        self._pending_timer: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Start watching and polling in the background; returns at once."""
        if self._settings.watch:
            self._spawn(self._watch())
        self._spawn(self._poll())

    async def stop(self) -> None:
        """Stop watching and polling."""
        if self._pending_timer is not None:
            self._pending_timer.cancel()
        for task in self._background:
            task.cancel()
        if self._watcher is not None:
            await asyncio.to_thread(self._watcher.stop)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        self._watcher = TasksWatcher(
            self._settings.tasks_dir,
            lambda name: loop.call_soon_threadsafe(self._folder_changed, name),
        )
        # Adding a watch per folder takes a while with thousands of tasks: off the loop,
        # so the API answers meanwhile; then one rescan for what changed in between.
        await asyncio.to_thread(self._watcher.start)
        await self._rescan_quietly(None)

    def _folder_changed(self, name: str) -> None:
        # Collect names for a short window so a burst of events (an editor's save, a
        # `cp -r`) becomes one rescan, started at most `debounce` after the first event.
        self._pending.add(name)
        if self._pending_timer is None:
            self._pending_timer = asyncio.get_running_loop().call_later(
                self._settings.debounce, self._rescan_pending
            )

    def _rescan_pending(self) -> None:
        names, self._pending, self._pending_timer = self._pending, set(), None
        self._spawn(self._rescan_quietly(names))

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._settings.rescan_interval)
            await self._rescan_quietly(None)

    async def _rescan_quietly(self, only: set[str] | None) -> None:
        try:
            await self._rescan(only)
        except Exception:
            logger.exception("rescan of %s failed", sorted(only) if only else "all tasks")

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
