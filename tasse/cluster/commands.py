"""Requests one node hands to another through the store: a manual run goes to the
scheduler (the one node that starts runs, so overlap and `max_parallel` are decided in one
place), a cancel to the node running the run.

Each node polls the commands meant for it every `POLL` seconds (a short indexed query) and
acts on each as if asked itself; the asker polls the answer. Polling, not LISTEN/NOTIFY: it
needs no connection held open per node, survives the store's restarts without a reconnect
dance, and 0.2 s is well within the 2 s a cancel may take to arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tasse.errors import (
    ClusterUnavailableError,
    ForwardedError,
    RunFinishedError,
    StoreUnavailableError,
    TaskBrokenError,
    TaskBusyError,
    TaskEnvError,
)
from tasse.models import Run, RunRequest
from tasse.store.commands import Command, Commands

logger = logging.getLogger(__name__)

#: seconds between polls for commands meant for this node (and for an answer)
POLL = 0.2
#: what a refusal is answered as (the HTTP status the asking node answers with); the same
#: order as the API's own mapping (`http/app.py`), which this part may not import
_STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (StoreUnavailableError, 503),
    (LookupError, 404),
    (TaskBusyError, 409),
    (TaskBrokenError, 409),
    (RunFinishedError, 409),
    (TaskEnvError, 409),
    (ValueError, 422),
)

RunNow = Callable[[str, RunRequest], Run]
Cancel = Callable[[str], Awaitable[Run]]


class CommandDesk:
    """Sends this node's requests to others, and carries out theirs."""

    def __init__(self, commands: Commands, node: str, run_now: RunNow, cancel: Cancel):
        self._commands = commands
        self._node = node
        self._run_now = run_now
        self._cancel = cancel
        self._task: asyncio.Task[None] | None = None
        self._handling: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Start polling for commands."""
        self._task = asyncio.get_running_loop().create_task(self._poll_forever())

    async def stop(self) -> None:
        """Stop polling (commands under way are cancelled)."""
        for task in [self._task, *self._handling]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # -- asking ------------------------------------------------------------------------

    async def run_on_scheduler(self, name: str, request: RunRequest, wait: float) -> Run:
        """Have the scheduler node start a manual run; the run it started."""
        body = {"task": name, **request.model_dump(mode="json")}
        answer = await self._ask("run", None, body, wait, f"a manual run of task {name!r}")
        return Run.model_validate(answer["run"])

    async def cancel_on(self, node: str, run_id: str, wait: float) -> Run:
        """Have `node` stop run `run_id` there; the run as it ended."""
        body = {"run_id": run_id}
        answer = await self._ask("cancel", node, body, wait, f"cancelling run {run_id}")
        return Run.model_validate(answer["run"])

    async def _ask(
        self, kind: str, target: str | None, body: dict[str, Any], wait: float, what: str
    ) -> dict[str, Any]:
        commands = self._commands
        command_id = await asyncio.to_thread(commands.send, kind, target, self._node, body)
        deadline = time.monotonic() + wait
        while True:
            await asyncio.sleep(POLL)
            taken, answer = await asyncio.to_thread(commands.answer_of, command_id)
            if answer is not None:
                break
            if time.monotonic() < deadline:
                continue
            # Not taken: take it back, so it cannot start later than its asker waited.
            if not taken and await asyncio.to_thread(commands.withdraw, command_id):
                raise ClusterUnavailableError(what, wait)
            deadline += wait  # taken: its answer is on its way
        if "error" in answer:
            raise ForwardedError(answer["error"], int(answer["status"]))
        return answer

    # -- acting ------------------------------------------------------------------------

    async def _poll_forever(self) -> None:
        while True:
            try:
                taken = await asyncio.to_thread(self._commands.take, self._node)
            except Exception as error:
                logger.debug("commands could not be read: %s", error)
                taken = []
            for command in taken:
                task = asyncio.get_running_loop().create_task(self._carry_out(command))
                self._handling.add(task)
                task.add_done_callback(self._handling.discard)
            await asyncio.sleep(POLL)

    async def _carry_out(self, command: Command) -> None:
        body = command.body
        try:
            if command.kind == "run":
                request = RunRequest.model_validate({k: v for k, v in body.items() if k != "task"})
                run = self._run_now(body["task"], request)
            else:
                run = await self._cancel(body["run_id"])
            answer: dict[str, Any] = {"run": run.model_dump(mode="json")}
            logger.info("node %s: %s for node %s done", self._node, command.kind, command.sender)
        except Exception as error:
            status = next((code for kind, code in _STATUSES if isinstance(error, kind)), 400)
            answer = {"error": str(error), "status": status}
        try:
            await asyncio.to_thread(self._commands.answer, command.id, answer)
        except Exception:
            logger.exception("the answer to command %d could not be written", command.id)
