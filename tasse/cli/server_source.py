"""The CLI's answers from a running server's API (`GET /tasks`, `/runs/{id}/log/events`, …)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from tasse.cli.server_api import ServerApi, ServerRefusedError, ServerUnreachableError
from tasse.cli.sources import Ended, LogPiece, Skipped
from tasse.errors import RunNotFoundError, TaskNotFoundError
from tasse.models import Run, RunStatus, TaskInfo

#: seconds a followed stream may stay broken (a server restarting) before the CLI gives up
RECONNECT_FOR = 15.0
#: seconds between attempts to reconnect
RECONNECT_EVERY = 0.5


class ServerSource:
    """Tasks, runs and logs as the server at `api.url` answers them."""

    def __init__(self, api: ServerApi):
        self.api = api
        self.note: str | None = None

    def tasks(self) -> list[TaskInfo]:
        """Every task, by name."""
        return [TaskInfo.model_validate(item) for item in self.api.get_json("/tasks")]

    def runs(self, task: str, status: RunStatus | None, limit: int) -> list[Run]:
        """The task's runs, newest first."""
        path = f"/tasks/{quote(task)}/runs"
        try:
            found = self.api.get_json(path, limit=limit, status=status and status.value)
        except ServerRefusedError as error:
            if error.status == 404:
                raise TaskNotFoundError(task) from None
            raise
        return [run_of(item) for item in found]

    def run(self, run_id: str) -> Run:
        """One run."""
        try:
            return run_of(self.api.get_json(f"/runs/{quote(run_id)}"))
        except ServerRefusedError as error:
            if error.status in (404, 422):
                raise RunNotFoundError(run_id) from None
            raise

    def log(self, run: Run) -> bytes:
        """The run's whole output so far."""
        try:
            return self.api.get_bytes(f"/runs/{quote(run.id)}/log")
        except ServerRefusedError as error:
            if error.status == 404:  # a fire that did not run has no output
                return b""
            raise

    def follow(self, run: Run) -> Iterator[LogPiece]:
        """`GET /runs/{id}/log/events`: resumed after the last piece when the stream breaks."""
        path = f"/runs/{quote(run.id)}/log/events"
        last_id: str | None = None
        broken_since: float | None = None
        while True:
            try:
                for event in self.api.events(path, last_id):
                    broken_since = None
                    if event.type == "log":
                        last_id = event.id or last_id
                        yield event.data
                    elif event.type == "truncated":
                        yield Skipped(_skipped(json.loads(event.data)))
                    elif event.type == "end":
                        yield Ended(run_of(json.loads(event.data)["run"]))
                        return
            except (ServerUnreachableError, OSError):
                pass  # the server stops (or restarts): try again for a while
            now = time.monotonic()
            broken_since = broken_since or now
            if now - broken_since > RECONNECT_FOR:
                raise ServerUnreachableError(self.api.url, "it went away while following the log")
            time.sleep(RECONNECT_EVERY)

    def close(self) -> None:
        """Nothing stays open between requests."""


def run_of(data: dict[str, Any]) -> Run:
    """A run as the API shows it; fields a newer server adds are left out, not refused."""
    return Run.model_validate(
        {key: value for key, value in data.items() if key in Run.model_fields}
    )


def _skipped(data: dict[str, Any]) -> str:
    skipped = data.get("offset", 0)
    return f"[the first {skipped} bytes of the log are not shown: `tasse logs` without -f has them]"
