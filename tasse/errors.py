"""Every error Tasse raises on purpose; each message names the task, the file and the key."""

from __future__ import annotations

from pathlib import Path

from tasse.values import TASK_NAME_PATTERN


class TasseError(Exception):
    """Root of Tasse's own errors."""


class TaskConfigError(TasseError, ValueError):
    """A task folder or its task.yaml cannot be used as it is."""

    def __init__(self, task: str, file: Path | str, problem: str, key: str | None = None):
        self.task = task
        self.file = str(file)
        self.key = key
        self.problem = problem
        where = f"{self.file}: {key}" if key else self.file
        super().__init__(f"task {task!r}: {where}: {problem}")


class TaskNameError(TasseError, ValueError):
    """A folder (or a name given on the command line) breaks the task name rule."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f"{name!r} is not a task name: names must match {TASK_NAME_PATTERN}")


class TaskNotFoundError(TasseError, LookupError):
    """No task by that name is loaded."""

    def __init__(self, name: str, detail: str = ""):
        self.name = name
        super().__init__(
            f"No task by the name of {name!r} was found" + (f": {detail}" if detail else "")
        )


class RunNotFoundError(TasseError, LookupError):
    """No run by that id is recorded."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        super().__init__(f"No run by the id of {run_id!r} was found")


class TaskBrokenError(TasseError):
    """The task's folder has an error and no earlier good version to fall back on."""

    def __init__(self, name: str, error: str):
        self.name = name
        super().__init__(f"task {name!r} cannot run until its error is fixed: {error}")


class RunFinishedError(TasseError):
    """The run cannot be cancelled because it has already ended."""

    def __init__(self, run_id: str, status: str):
        super().__init__(f"run {run_id!r} has already ended ({status})")


class SettingsError(TasseError, ValueError):
    """A setting (flag, environment variable or .env entry) has a bad value."""


class TaskBusyError(TasseError):
    """A manual run was asked for while the task is still running."""

    def __init__(self, name: str, run_id: str):
        self.name = name
        self.run_id = run_id
        super().__init__(
            f"task {name!r} is already running (run {run_id}); cancel it or wait for it to end"
        )


class TaskEnvError(TasseError):
    """The task's Python environment cannot be used: its build failed, or no interpreter fits."""

    def __init__(self, name: str, problem: str):
        self.name = name
        self.problem = problem
        super().__init__(f"task {name!r}: its Python environment {problem}")


class TaskExistsError(TasseError):
    """A task of that name exists already (a folder, or one defined earlier)."""

    def __init__(self, name: str, source: str):
        self.name = name
        super().__init__(
            f"task {name!r} exists already (source: {source}); "
            f"PUT /tasks/{name} replaces a task defined through the API"
        )


class FolderTaskError(TasseError):
    """The API was asked to change a task that its folder defines."""

    def __init__(self, name: str, folder: str):
        self.name = name
        super().__init__(
            f"task {name!r} is defined by its folder {folder!r}: edit the folder; "
            "the API changes only tasks defined through it"
        )


class ScheduleError(TasseError, ValueError):
    """A schedule cannot be turned into a trigger; `field` names the part at fault, if known."""

    def __init__(self, problem: str, field: str | None = None):
        self.problem = problem
        self.field = field
        super().__init__(f"{field}: {problem}" if field else problem)


class StoreUnusableError(TasseError):
    """The job store's address cannot be opened (bad URL, missing driver, no server)."""

    def __init__(self, address: str, problem: str):
        self.address = address
        super().__init__(f"store {address!r} cannot be used: {problem}")


class StoreUnavailableError(TasseError):
    """The job store did not answer in time or failed; `store` is its address, no password."""

    def __init__(self, store: str, problem: str):
        self.store = store
        self.problem = problem
        super().__init__(f"the job store {store} is not available: {problem}")


class ForeignTableError(TasseError, ValueError):
    """A table the store would use is there already and is not Tasse's: it is left alone."""

    def __init__(self, table: str, what: str):
        self.table = table
        super().__init__(
            f"table {table!r} is {what}, not Tasse's defined tasks, and Tasse does not alter it:"
            " give another --store-table-name (ST_STORE_TABLE_NAME), or drop that table and"
            " re-seed the jobs into Tasse's with --pre-seed-jobs=cronjobs.json"
        )


class StoreDriverMissingError(StoreUnusableError):
    """The store's address needs a database driver that is not installed."""

    def __init__(self, address: str, module: str, install: str):
        self.module = module
        super().__init__(address, f"its driver ({module}) is not installed: {install}")


class DataFolderError(TasseError):
    """The data folder cannot be made this server's (not writable, or its lock not opened)."""

    def __init__(self, folder: Path | str, problem: str):
        self.folder = str(folder)
        super().__init__(f"data folder {self.folder}: {problem}")


class DataFolderBusyError(DataFolderError):
    """Another Tasse server holds the data folder; `pid` is its process id, if it wrote one."""

    def __init__(self, folder: Path | str, pid: int | None):
        self.pid = pid
        holder = f"pid {pid}" if pid else "a process that has not written its pid yet"
        super().__init__(
            folder,
            f"in use by another Tasse server ({holder}); stop it first, or give this "
            "server a data folder of its own (--data-dir)",
        )


class FireTimesBudgetError(TasseError, ValueError):
    """A listing of fire times would take more trigger steps than one request may compute."""

    def __init__(self, task: str, count: int, schedules: int, budget: int):
        self.task = task
        most = budget // schedules
        ask = (
            f"ask for count={most} or fewer"
            if most
            else "the task has more schedules than that: raise the budget"
        )
        super().__init__(
            f"task {task!r}: {count} fire times of {schedules} schedule(s) take "
            f"{count * schedules:,} trigger steps, more than the {budget:,} one request may "
            f"compute (setting next_fires_budget, TASSE_NEXT_FIRES_BUDGET); {ask}"
        )


class NotifyTargetError(TasseError, ValueError):
    """A notification target cannot be used (not a URL, unknown to Apprise, unreadable file)."""

    def __init__(self, where: str, problem: str):
        self.where = where
        super().__init__(f"notification target {where}: {problem}")


class DeliveryError(TasseError):
    """A notification could not be delivered to its target this time (it is tried again)."""

    def __init__(self, target: str, problem: str):
        self.target = target
        self.problem = problem
        super().__init__(f"{target}: {problem}")


class ClusterUnavailableError(TasseError):
    """No cluster node took a request meant for another node in time."""

    def __init__(self, what: str, seconds: float):
        super().__init__(f"{what}: no cluster node took it within {seconds:g} s")


class NodeUnreachableError(ClusterUnavailableError):
    """The cluster node holding what a request asks for did not answer (a 503)."""

    def __init__(self, what: str, node: str, address: str | None, problem: str):
        where = f"node {node!r}" + (f" ({address})" if address else " (no API address known)")
        TasseError.__init__(self, f"{what} is on {where}, which did not answer: {problem}")


class ForwardedError(TasseError):
    """The node that acted on a request refused it; its status and message are passed on."""

    def __init__(self, detail: str, http_status: int):
        self.http_status = http_status
        super().__init__(detail)
