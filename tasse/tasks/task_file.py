"""Reading a task.yaml safely, and validating it into a `TaskSpec` whose errors name the key."""

from __future__ import annotations

import os
import reprlib
import stat
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tasse.errors import TaskConfigError
from tasse.tasks.keys import keys_at, near_key
from tasse.tasks.task import TaskSpec
from tasse.values import shorten

#: a task.yaml is a few lines; anything larger is a mistake, not a schedule
MAX_TASK_FILE_BYTES = 256 * 1024
#: lists and mappings nested deeper are no task.yaml: libyaml nests on the C stack (the
#: process crashes near 25 000 levels) and scans flow nesting in quadratic time
MAX_NESTING = 64

#: shows a bad value in an error without printing all of a huge (or alias-bombed) one
_short = reprlib.Repr()
_short.maxstring = _short.maxother = 80
_short.maxlist = _short.maxdict = 5
_short.maxlevel = 2
#: the type of a validation error whose value is not quoted back (it may hold a password)
SECRET_INPUT = "secret_input"
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_spec(name: str, file: Path, data: Any) -> TaskSpec:
    """Validate task.yaml content; the error names the first offending key and its value."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TaskConfigError(name, file, f"must be a mapping of keys, not {type(data).__name__}")
    try:
        return TaskSpec.model_validate(data)
    except ValidationError as error:
        raise config_error(name, file, error) from None


def read_task_file(name: str, file: Path) -> Any:
    """The content of a task.yaml (None when there is none), or a TaskConfigError saying why not."""
    try:
        # O_NONBLOCK: a FIFO named task.yaml must not hang the scan waiting for a writer.
        descriptor = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None  # every key is optional, so is the file
    with os.fdopen(descriptor, "rb") as stream:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise TaskConfigError(name, file, "is not a regular file")
        # Sized by the file: read(256 KiB) would allocate that much for a 50-byte file.
        raw = stream.read(min(status.st_size, MAX_TASK_FILE_BYTES) + 1)
        too_big = len(raw) > MAX_TASK_FILE_BYTES
        size = os.fstat(descriptor).st_size if too_big else len(raw)
    if size > MAX_TASK_FILE_BYTES:
        raise TaskConfigError(name, file, f"is {size} bytes; the limit is {MAX_TASK_FILE_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TaskConfigError(name, file, "is not UTF-8 text") from None
    return _parse_yaml(name, file, text)


def _parse_yaml(name: str, file: Path, text: str) -> Any:
    try:
        too_deep = _nests_deeper_than(MAX_NESTING, text)
        data = None if too_deep else yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as error:
        problem = _tab_problem(text, error) or _yaml_problem(error)
        raise TaskConfigError(name, file, f"is not valid YAML: {problem}") from None
    except (ValueError, LookupError, AttributeError) as error:
        # PyYAML's scalar constructors let Python's errors through: ValueError for
        # `2020-13-45` or a 5000-digit int, KeyError for `!!bool maybe`, AttributeError
        # for `!!timestamp x`.
        problem = f"is not valid YAML: a value cannot be read ({error})"
        raise TaskConfigError(name, file, problem) from None
    if too_deep:
        raise TaskConfigError(name, file, f"nests more than {MAX_NESTING} levels deep")
    return data


def _nests_deeper_than(limit: int, text: str) -> bool:
    # Each level opens with one of these characters, so a file with few of them is
    # shallow: the usual case is not parsed twice (a scan may read thousands).
    if sum(map(text.count, "[{-?:")) <= limit:
        return False
    depth = 0
    # Events come one at a time: a hostile file is given up on at the limit, cheaply.
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > limit:
                return True
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return False


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem


def _tab_problem(text: str, error: yaml.YAMLError) -> str | None:
    # PyYAML says "found character that cannot start any token": the user sees no tab.
    mark = getattr(error, "problem_mark", None)
    if mark is None:
        return None
    lines = text.splitlines()
    line = lines[mark.line] if mark.line < len(lines) else ""
    indent = line[: len(line) - len(line.lstrip(" \t"))]
    if "\t" not in indent:
        return None
    return (
        f"line {mark.line + 1} is indented with a tab; YAML forbids tabs for indentation, "
        "indent with spaces instead"
    )


def config_error(
    name: str, file: Path | str, error: ValidationError, schema: type[BaseModel] = TaskSpec
) -> TaskConfigError:
    """The first problem of a validation, naming its key, with the bad value shortened."""
    problems = error.errors(include_url=False)
    first = problems[0]
    if first["type"] == "missing":
        # `rundate:` for `run_date:` is both a missing key and an unknown one: the unknown
        # one beside it says what was meant.
        beside = [p for p in problems if p["type"] == "extra_forbidden"]
        beside = [p for p in beside if p["loc"][:-1] == first["loc"][:-1]]
        first = beside[0] if beside else first
    key = _key_path(first["loc"])
    if first["type"] == "extra_forbidden":
        unknown = key.rpartition(".")[2]
        hint = near_key(unknown, keys_at(schema, first["loc"][:-1]))
        return TaskConfigError(name, file, f"unknown key {unknown!r}{hint}", key)
    problem = shorten(first["msg"])  # many quote the bad value, which may be huge
    if first["type"] not in ("missing", SECRET_INPUT):
        problem += f" (got {_short.repr(first['input'])})"
    more = error.error_count() - 1
    if more:
        problem += f"; and {more} more problem{'s' if more > 1 else ''}"
    return TaskConfigError(name, file, problem, key)


def _key_path(loc: tuple[int | str, ...]) -> str:
    # A tagged union puts the tag into the path (`scheduler.interval.secondz`); users
    # wrote no such key, so leave it out.
    parts = [str(p) for p in loc if p not in ("interval", "cron", "date", "crontab")]
    return ".".join(parts)
