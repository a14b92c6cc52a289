"""Tasks defined as data (the API, seed files): their schema, and how each becomes a Task.

A definition has the keys of task.yaml plus what to run, exactly one of:
- `command`: an argv list, run in `data/work/<name>/`;
- `python_ref`: `"package.module:function"`, called with `args` and `kwargs` in a
  subprocess, in an environment built from `requirements`;
- `task`: the name of another task, whose code runs on this definition's own schedule,
  with its `args` appended and its `params` as TASSE_PARAM_<NAME>;
- `sql`: one statement, run on `database` (a SQLAlchemy URL; the job store's by default)
  by `tasse.store.sql_task` in a subprocess of the server's own interpreter.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from pydantic import ConfigDict, Field, JsonValue, field_validator, model_validator
from pydantic_core import PydanticCustomError

from tasse.envs.dependencies import Dependencies
from tasse.store import sql_task
from tasse.store.database import absolute_address, check_address, shown_address
from tasse.tasks.task import PYTHON, Task, TaskSpec
from tasse.tasks.task_file import SECRET_INPUT
from tasse.values import TASK_NAME_PATTERN, Text, VariableName, scalar_to_text

#: where a defined task comes from
DefinedSource = Literal["api", "seed"]
#: `python -c` program that imports and calls a python_ref: argv is ref, args, kwargs,
#: then any extra arguments of a manual run (as strings)
PYTHON_REF_RUNNER = """\
import asyncio, importlib, inspect, json, sys
module, _, path = sys.argv[1].partition(":")
target = importlib.import_module(module)
for part in path.split("."):
    target = getattr(target, part)
result = target(*json.loads(sys.argv[2]), *sys.argv[4:], **json.loads(sys.argv[3]))
if inspect.isawaitable(result):
    async def wait(awaitable):
        return await awaitable
    result = asyncio.run(wait(result))
if result is not None:
    print(result)
"""
_WHAT_TO_RUN = ("command", "python_ref", "task", "sql")
#: characters of an SQL statement at most: it is one argument of the run's command line,
#: which Linux limits to 128 KiB (of UTF-8, up to four bytes a character)
MAX_SQL = 30_000
#: Supertask's ids are small; those Tasse makes for other tasks lie above this
MAX_CRONJOB_ID = 2**31 - 1


class TaskDefinition(TaskSpec):
    """The body of `POST /tasks` (and an item of a seed file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=TASK_NAME_PATTERN)
    #: text for `command` and `task`; any JSON values for `python_ref`
    args: list[JsonValue] = Field(default_factory=list, max_length=1000)  # type: ignore[assignment]
    command: list[Text] | None = Field(None, min_length=1)
    python_ref: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
    kwargs: dict[str, JsonValue] = Field(default_factory=dict)
    #: packages for the task's environment (PEP 508 lines)
    requirements: list[str] = Field(default_factory=list, max_length=1000)
    task: str | None = Field(None, pattern=TASK_NAME_PATTERN)
    #: become TASSE_PARAM_<NAME> in every run
    params: dict[VariableName, Text] = Field(default_factory=dict)
    #: one SQL statement, run in a transaction that commits when it succeeds
    sql: Text | None = Field(None, max_length=MAX_SQL)
    #: where `sql` runs: a SQLAlchemy URL; None: the job store (as Supertask's exec_sql)
    database: str | None = None

    @field_validator("sql")
    @classmethod
    def _some_sql(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("an SQL statement is needed, not blank text")
        return value

    @field_validator("database")
    @classmethod
    def _readable_url(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_address(value)
            except ValueError as error:
                # Not quoted back in the error: a URL that does not parse may hold a password.
                raise PydanticCustomError(SECRET_INPUT, str(error)) from None
        return value

    #: Supertask's id of the job (`/cronjobs/{id}`), kept for tasks from its file or API
    cronjob_id: int | None = Field(None, ge=0, le=MAX_CRONJOB_ID)

    @model_validator(mode="after")
    def _one_thing_to_run(self) -> TaskDefinition:
        given = [key for key in _WHAT_TO_RUN if getattr(self, key) is not None]
        if len(given) != 1:
            found = f" (got {' and '.join(given)})" if given else ""
            raise ValueError(f"give exactly one of command, python_ref, task or sql{found}")
        _check_sql_keys(self)
        if self.entrypoint is not None:
            raise ValueError(
                "entrypoint is for task folders; give command, python_ref, task or sql"
            )
        if self.kwargs and self.python_ref is None:
            raise ValueError("kwargs go with python_ref")
        if self.task == self.name:
            raise ValueError("a task cannot refer to itself")
        if self.task is not None and self.requirements:
            raise ValueError("a task reference runs in its target's environment: no requirements")
        if self.python_ref is None:
            text_args(self.args)
        for line in self.requirements:
            try:
                Requirement(line)
            except InvalidRequirement as error:
                raise ValueError(f"requirements: {line!r}: {error}") from None
        return self


def _check_sql_keys(definition: TaskDefinition) -> None:
    """`database` only with `sql`, and nothing with it that an SQL task cannot use."""
    if definition.sql is None:
        if definition.database is not None:
            raise ValueError("database goes with sql")
        return
    # The statement runs in the server's own interpreter, which has SQLAlchemy and the
    # drivers; packages, an interpreter and arguments have nowhere to go.
    for key in ("requirements", "python", "args"):
        if getattr(definition, key):
            raise ValueError(f"{key} does not go with sql")


def text_args(values: list[Any]) -> list[str]:
    """Arguments of a command line: strings, numbers and booleans, as text."""
    texts = [scalar_to_text(value) for value in values]
    for value in texts:
        if not isinstance(value, str):
            raise ValueError(f"args of a command are text, numbers or booleans (got {value!r:.60})")
        if "\x00" in value:
            raise ValueError("args: a value contains a NUL character")
    return texts


def to_task(
    definition: TaskDefinition,
    source: DefinedSource,
    work_dir: Path,
    store_address: str = "memory://",
) -> Task:
    """The runnable task a definition describes (a `task:` reference is resolved later).

    `store_address`: the job store's, where an SQL task without `database` runs.
    """
    spec_keys = set(TaskSpec.model_fields) - {"args", "entrypoint", "env"}
    fields = {key: getattr(definition, key) for key in spec_keys}
    env = {
        **definition.env,
        **{f"TASSE_PARAM_{k.upper()}": v for k, v in definition.params.items()},
    }
    if definition.sql is not None:
        # A relative SQLite path means the server's working directory, not the run's.
        database = absolute_address(definition.database or store_address)
        env[sql_task.DATABASE_VARIABLE] = database
    requirements = tuple(sorted({str(Requirement(line)) for line in definition.requirements}))
    dependencies = Dependencies("requirements", requirements) if requirements else None
    if definition.python_ref is not None:
        command: tuple[str, ...] = (
            PYTHON,
            "-c",
            PYTHON_REF_RUNNER,
            definition.python_ref,
            json.dumps(definition.args),
            json.dumps(definition.kwargs),
        )
        args: list[str] = []
        dependencies = Dependencies("requirements", requirements)  # bare at least
    elif definition.sql is not None:
        command, args = sql_task.command(definition.sql), []
    else:
        command = tuple(definition.command or ())
        args = text_args(definition.args)
    return Task(
        name=definition.name,
        folder=work_dir / definition.name,
        spec=TaskSpec(**fields, env=env, args=args),
        command=command,
        source=source,
        dependencies=dependencies,
        reference=definition.task,
    )


#: variable names whose values the API never shows (the run still gets them)
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|PWD|KEY|CREDENTIAL|AUTH", re.IGNORECASE)
MASK = "***"


def shown_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """A stored definition as the API shows it: secret-looking values and passwords masked."""
    shown = dict(definition)
    if isinstance(shown.get("database"), str):
        shown["database"] = shown_address(shown["database"])
    for key in ("env", "params"):
        values = shown.get(key)
        if isinstance(values, dict):
            shown[key] = {
                name: MASK if _SECRET_NAME.search(name) else value for name, value in values.items()
            }
    return shown


def unmasked(definition: TaskDefinition, stored: dict[str, Any]) -> TaskDefinition:
    """`definition` with each masked value that the stored one has put back."""
    changes: dict[str, Any] = {}
    before_database = stored.get("database")
    if isinstance(before_database, str) and definition.database == shown_address(before_database):
        changes["database"] = before_database
    for key in ("env", "params"):
        values, before = getattr(definition, key), stored.get(key) or {}
        if any(value == MASK and name in before for name, value in values.items()):
            changes[key] = {
                name: before[name] if value == MASK and name in before else value
                for name, value in values.items()
            }
    return definition.model_copy(update=changes) if changes else definition


def shown_command(task: Task) -> list[str]:
    """The command line as the API shows it: the python_ref runner's code left out."""
    if task.reference is not None:
        return [f"task:{task.reference}"]
    return [
        "<tasse python_ref runner>" if part == PYTHON_REF_RUNNER else part for part in task.argv()
    ]


def resolve(task: Task, target: Task) -> Task:
    """What a `task:` reference runs: the target's code, with this task's args and env."""
    spec = target.spec.model_copy(
        update={
            "args": [*target.spec.args, *task.spec.args],
            "env": {**target.spec.env, **task.spec.env},
            "timeout": task.spec.timeout or target.spec.timeout,
        }
    )
    return target.model_copy(
        update={"name": task.name, "source": task.source, "spec": spec, "reference": None}
    )
