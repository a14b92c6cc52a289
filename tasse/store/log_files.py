"""Where a task's log files live in the data folder, and how log.txt rolls over.

Run output is a record like a history row: it belongs to the store, and retention removes
both together. What writes it as a run goes is `tasse.runs.logs`.
"""

from __future__ import annotations

import re
from pathlib import Path

TASK_LOG = "log.txt"
_RUN_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")

#: defaults: a run keeps its first 10 MB of output; log.txt rolls over at 10 MB, 3 kept
MAX_RUN_LOG_BYTES = 10 * 1024 * 1024
MAX_TASK_LOG_BYTES = 10 * 1024 * 1024
TASK_LOG_BACKUPS = 3


class LogLayout:
    """`<logs>/<task>/log.txt` for everything, `<logs>/<task>/runs/<run-id>.log` per run."""

    def __init__(
        self,
        logs_dir: Path,
        max_run_log_bytes: int = MAX_RUN_LOG_BYTES,
        max_task_log_bytes: int = MAX_TASK_LOG_BYTES,
        task_log_backups: int = TASK_LOG_BACKUPS,
    ):
        self.logs_dir = logs_dir
        self.max_run_log_bytes = max_run_log_bytes
        self.max_task_log_bytes = max_task_log_bytes
        self.task_log_backups = task_log_backups

    def rotate_task_log(self, task: str) -> None:
        """Roll log.txt over to log.txt.1 (and .1 to .2, …) once it has grown past its limit."""
        current = self.task_log(task)
        try:
            if current.stat().st_size < self.max_task_log_bytes:
                return
        except FileNotFoundError:
            return
        for number in range(self.task_log_backups - 1, 0, -1):
            older = current.with_name(f"{TASK_LOG}.{number}")
            if older.exists():
                older.replace(current.with_name(f"{TASK_LOG}.{number + 1}"))
        if self.task_log_backups > 0:
            current.replace(current.with_name(f"{TASK_LOG}.1"))
        else:
            current.unlink()

    def task_log(self, task: str) -> Path:
        """The task's combined, timestamped log."""
        return self.logs_dir / task / TASK_LOG

    def env_log(self, task: str) -> Path:
        """The installer's output of the latest build of the task's environment."""
        return self.logs_dir / task / "env.log"

    def run_log(self, task: str, run_id: str) -> Path:
        """One run's raw output."""
        if not _RUN_ID.fullmatch(run_id):
            raise ValueError(f"{run_id!r} is not a run id")
        return self.logs_dir / task / "runs" / f"{run_id}.log"
