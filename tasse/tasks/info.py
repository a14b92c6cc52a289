"""What the API and CLI show of a task: its entry, with what the other parts know of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tasse.models import EnvInfo, Run, TaskInfo, TaskSource, TaskState
from tasse.store.pauses import Pause
from tasse.tasks.definitions import shown_command
from tasse.tasks.registry import TaskEntry


def task_info(
    entry: TaskEntry,
    *,
    source: TaskSource,
    last_run: Run | None,
    state: TaskState,
    next_run_at: datetime | None = None,
    env: EnvInfo | None = None,
    env_problem: str | None = None,
    policy: dict[str, Any] | None = None,
    definition: dict[str, Any] | None = None,
    pause: Pause | None = None,
    active_runs: list[Run] | None = None,
) -> TaskInfo:
    """The task as shown: a broken one with its error, a loaded one with all it is."""
    task = entry.task
    error = str(entry.error) if entry.error else None
    pause_fields: dict[str, Any] = {
        "paused": pause is not None,
        "paused_at": pause.paused_at if pause else None,
        "paused_reason": pause.reason if pause else None,
    }
    if task is None:
        return TaskInfo(
            name=entry.name,
            source=source,
            enabled=False,
            error=error,
            last_run=last_run,
            active_runs=active_runs or [],
            definition=definition,
            **pause_fields,
            state=state,
        )
    spec = task.spec
    return TaskInfo(
        name=entry.name,
        title=spec.title,
        source=task.source,
        description=spec.description,
        enabled=spec.enabled,
        schedules=[
            t if isinstance(t, str) else t.model_dump(mode="json", exclude_defaults=True)
            for t in spec.triggers
        ],
        next_run_at=next_run_at,
        last_run=last_run,
        active_runs=active_runs or [],
        error=error or env_problem,
        folder=str(task.folder) if task.reference is None else None,
        command=shown_command(task),
        env=env or EnvInfo(),
        policy=policy or {},
        definition=definition,
        **pause_fields,
        state=state,
    )
