"""What a message says: built from the event as it happens, rendered when it is sent.

The payload (kept in the outbox row, so a message sent after a restart says the same) has
the task, the events, the run, a one-line reason, detail lines and the link to the run on
the dashboard (`public_url`). The last lines of the run's log are read only when it is
sent, on a delivery thread: the loop never reads a file for a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tasse.models import Run

#: bytes read from the end of a run's log for its last lines
TAIL_BYTES = 16 * 1024

_HEADLINES = {
    "failed": "{task} failed",
    "timed_out": "{task} timed out",
    "missed": "{task} missed a fire",
    "skipped": "{task} skipped a fire",
    "retries_exhausted": "{task} failed, its retries used up",
    "recovered": "{task} recovered",
    "env_failed": "{task}: its environment cannot be built",
    "succeeded": "{task} succeeded",
    "after_failures": "{task} failed several times in a row",
    "longer_than": "{task} ran longer than it should",
    "shorter_than": "{task} ran shorter than it should",
    "no_success_for": "{task} has not succeeded for too long",
    "test": "Tasse test notification",
    "digest": "{task}: more notifications",
}


def reason_of(run: Run) -> str:
    """A run's outcome in one line."""
    if run.error:
        return run.error.splitlines()[0][:300]
    if run.exit_code is not None:
        return f"{run.status.value}, exit code {run.exit_code}"
    return run.status.value


def payload(
    task: str,
    events: Sequence[str],
    reason: str,
    run: Run | None = None,
    details: Sequence[str] = (),
    public_url: str | None = None,
) -> dict[str, Any]:
    """What a message about `events` says (JSON: the outbox keeps it, a webhook gets it)."""
    headline = _HEADLINES.get(events[0], "{task}: " + events[0]).format(task=task)
    link = None
    if public_url:
        base = public_url.rstrip("/")
        link = f"{base}/runs/{run.id}" if run is not None else f"{base}/tasks/{task}"
    return {
        "title": f"Tasse: {headline}",
        "task": task,
        "events": list(events),
        "reason": reason,
        "details": list(details),
        "run": None if run is None else _run_part(run),
        "url": link,
    }


def _run_part(run: Run) -> dict[str, Any]:
    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "id": run.id,
        "status": run.status.value,
        "trigger": run.trigger.value,
        "attempt": run.attempt,
        "exit_code": run.exit_code,
        "scheduled_at": iso(run.scheduled_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
    }


def render(message: dict[str, Any], log_tail: Sequence[str]) -> tuple[str, str]:
    """The title and plain-text body a person reads."""
    lines = [f"Task: {message['task']}", f"Event: {', '.join(message['events'])}"]
    run = message.get("run")
    if run:
        lines.append(
            f"Run: {run['id']} ({run['status']}; {run['trigger']}, attempt {run['attempt']})"
        )
    lines.append(f"Reason: {message['reason']}")
    lines += message.get("details", [])
    if message.get("url"):
        lines.append(f"Dashboard: {message['url']}")
    if log_tail:
        lines += ["", "Last lines of the log:", *log_tail]
    return str(message["title"]), "\n".join(lines)


def log_tail(path: Path, count: int) -> list[str]:
    """The last `count` lines of a log file (none if it is gone or unreadable)."""
    if count <= 0:
        return []
    try:
        with path.open("rb") as file:
            size = file.seek(0, 2)
            file.seek(max(0, size - TAIL_BYTES))
            data = file.read()
    except OSError:
        return []
    return tail_lines(data, count, cut=len(data) == TAIL_BYTES)


def tail_lines(data: bytes, count: int, cut: bool) -> list[str]:
    """The last `count` lines of the end of a log (`cut`: its first line may be partial)."""
    lines = data.decode("utf-8", "replace").splitlines()
    if cut and lines:
        lines = lines[1:]  # the first line read is likely cut
    return [line[:500] for line in lines[-count:]]
