"""Crontab files as task definitions: each job line a task that `/bin/sh -c` runs, as cron does.

A file is read as Debian's cron reads it (crontab(5)), line by line:
- `# …` comments and blank lines are skipped; the comment lines directly above a job are
  its description (a commented-out job or variable ends them), and `# tasse: name=NAME`
  among them names it. Otherwise its name is the command's first words and a short hash
  of the command (not of the schedule or the line number: editing when it runs, or other
  lines, keeps its name and its history).
- `NAME=value` sets a variable for the jobs below it (spaces around `=` allowed, one pair
  of quotes around the value stripped). Every variable reaches the jobs' environment;
  `SHELL` is also the shell that runs them, `CRON_TZ` (or else `TZ`) their time zone, and
  `MAILTO` stays in the environment only: Tasse sends no mail.
- a job: the schedule (5 fields, 6 with a leading second, 7 with a trailing year — the
  most that parse — or a macro such as `@daily` or `@reboot`), then in the system format
  (`/etc/crontab`, `/etc/cron.d/*`) the user, then the command. The first unescaped `%`
  ends the command; what follows is its standard input, each further `%` a newline
  (`\\%` is a literal `%`): tasse.tasks.cron_lines.

A bad line is a problem naming the file and the line; the other lines load.
"""

from __future__ import annotations

import os
import pwd
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from tasse.errors import TaskConfigError
from tasse.tasks.cron_lines import (
    CronCommand,
    job_name,
    parse_variable,
    split_command,
    split_job,
)
from tasse.tasks.definitions import TaskDefinition
from tasse.tasks.task_file import config_error
from tasse.values import TASK_NAME_PATTERN, check_timezone

#: cron's shell when the file sets no SHELL
DEFAULT_SHELL = "/bin/sh"
#: where the user of a system-format line is kept (Tasse runs every line as its own user)
USER_VARIABLE = "TASSE_CRON_USER"

_TOKEN = re.compile(r"[^ \t]+")
_DIRECTIVE = re.compile(r"#[ \t]*tasse:(.*)")
#: the first token of a job line: a field starting with a digit or `*`, or a macro
_JOB_START = re.compile(r"[ \t]*(@[A-Za-z]+|[0-9*][^ \t]*)[ \t]+[^ \t]")


@dataclass(frozen=True, kw_only=True)
class CronJob:
    """One job line of a crontab: where it is, what it runs, and the task it becomes."""

    line: int
    #: the line's user field (system format only)
    user: str | None
    command: CronCommand
    shell: str
    definition: TaskDefinition


@dataclass
class Crontab:
    """What a crontab file holds: its jobs, and a problem per line that is not one."""

    jobs: list[CronJob] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: names of the jobs that are there but invalid: their last good version stays
    broken: set[str] = field(default_factory=set)


@dataclass
class _State:
    """What the lines read so far set for the jobs after them."""

    variables: dict[str, str] = field(default_factory=dict)
    #: the zone's name, and the problem when it is not one
    zone: str | None = None
    zone_problem: str | None = None
    #: comment lines directly above the current line
    comments: list[str] = field(default_factory=list)
    seen: Counter[tuple[str | None, str]] = field(default_factory=Counter)


def is_crontab(location: str, text: str) -> bool:
    """Whether a seed is a crontab: by its name (`crontab`, `*.cron`, `cron.d/…`) or its lines."""
    path = _path_of(location)
    if path.name == "crontab" or path.suffix in (".cron", ".crontab") or _in_cron_d(path):
        return True
    # A JSON or YAML seed has lines of neither kind (`[`, `- name: …`, `tasks:`).
    lines = (line.removesuffix("\r") for line in text.split("\n"))
    meaningful = [line for line in lines if line.strip(" \t") and not _is_comment(line)]
    return bool(meaningful) and all(
        _JOB_START.match(line) or parse_variable(line) is not None for line in meaningful
    )


def has_user_field(location: str) -> bool:
    """Whether a crontab is in the system format, by its place: /etc/crontab, /etc/cron.d/*."""
    path = _path_of(location)
    return path.parts[-2:] == ("etc", "crontab") or _in_cron_d(path)


def other_users(crontab: Crontab) -> set[str]:
    """The users its lines name that the server is not: it runs every line as itself."""
    try:
        own: str | None = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        own = None  # a uid without a passwd entry, as containers often run
    return {job.user for job in crontab.jobs if job.user is not None and job.user != own}


def _path_of(location: str) -> PurePosixPath:
    return PurePosixPath(urlsplit(location).path if "://" in location else location)


def _in_cron_d(path: PurePosixPath) -> bool:
    return path.parent.name == "cron.d"


def _is_comment(line: str) -> bool:
    return line.lstrip(" \t").startswith("#")


def parse_crontab(text: str, origin: str, system: bool = False) -> Crontab:
    """The jobs of a crontab's text; `system`: its lines have a user field before the command."""
    crontab = Crontab()
    state = _State()
    names: set[str] = set()
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.removesuffix("\r")
        where = f"{origin}: line {number}"
        stripped = line.strip(" \t")
        if not stripped:
            state.comments = []
        elif _is_comment(stripped):
            state.comments.append(stripped)
        elif (variable := parse_variable(line)) is not None:
            _set_variable(state, variable, where, crontab)
            state.comments = []
        else:
            _add_job(crontab, state, number, line, system, where, names)
            state.comments = []
    return crontab


def _add_job(
    crontab: Crontab,
    state: _State,
    number: int,
    line: str,
    system: bool,
    where: str,
    names: set[str],
) -> None:
    name = "?"
    try:
        schedule, user, rest = split_job(line, system)
        command = split_command(rest)
        name = _name(state, user, command)
        job = _job(state, number, schedule, user, command, name, where)
    except TaskConfigError as error:
        crontab.problems.append(str(error))  # it names the task, the file and the line
        crontab.broken.add(name)
        return
    except ValueError as error:
        crontab.problems.append(f"{where}: {error}")
        known = _likely_name(state, line, system) if name == "?" else name
        if known is not None:
            crontab.broken.add(known)
        return
    if name in names:
        crontab.problems.append(f"{where}: task {name!r} appears twice; kept the first")
        return
    names.add(name)
    crontab.jobs.append(job)


def _job(
    state: _State,
    number: int,
    schedule: str,
    user: str | None,
    command: CronCommand,
    name: str,
    where: str,
) -> CronJob:
    if state.zone_problem is not None:
        raise ValueError(state.zone_problem)
    if not command.command.strip(" \t"):
        raise ValueError("has no command")
    shell = state.variables.get("SHELL") or DEFAULT_SHELL
    data: dict[str, Any] = {
        "name": name,
        "schedule": schedule,
        "command": [shell, "-c", command.command],
    }
    env = dict(state.variables)
    if user is not None:
        env[USER_VARIABLE] = user
    if env:
        data["env"] = env
    if state.zone:
        data["timezone"] = state.zone
    if command.stdin:
        data["stdin"] = command.stdin
    description = _description(state.comments)
    if description:
        data["description"] = description
    try:
        definition = TaskDefinition.model_validate(data)
    except ValidationError as error:
        raise config_error(name, where, error) from None
    return CronJob(line=number, user=user, command=command, shell=shell, definition=definition)


def _likely_name(state: _State, line: str, system: bool) -> str | None:
    """The name of a job whose schedule cannot be read, if it is the usual 5 fields (or a
    macro): a typo in when it runs keeps the task's last good version, as for task.yaml."""
    tokens = list(_TOKEN.finditer(line))
    fields = (1 if tokens and tokens[0].group().startswith("@") else 5) + system
    if len(tokens) <= fields:
        return None
    user = tokens[fields - 1].group() if system else None
    try:
        return _name(state, user, split_command(line[tokens[fields].start() :]))
    except ValueError:
        return None  # its `# tasse:` line is bad too


def _set_variable(state: _State, variable: tuple[str, str], where: str, crontab: Crontab) -> None:
    name, value = variable
    if not name.isascii() or not name.replace("_", "a").isalnum():
        crontab.problems.append(
            f"{where}: variable name {name!r} cannot reach a process (letters, digits, _); ignored"
        )
        return
    state.variables[name] = value
    if name in ("CRON_TZ", "TZ"):
        _set_zone(state, where)


def _set_zone(state: _State, where: str) -> None:
    # CRON_TZ is cron's own, TZ the process's: when both are set, CRON_TZ decides.
    name = "CRON_TZ" if state.variables.get("CRON_TZ") else "TZ"
    value = state.variables.get(name, "")
    state.zone, state.zone_problem = value or None, None
    if value:
        try:
            check_timezone(value)
        except ValueError as error:
            state.zone_problem = f"{name} set at {where.rpartition(': ')[2]}: {error}"


def _name(state: _State, user: str | None, command: CronCommand) -> str:
    named = _directive_name(state.comments)
    if named is not None:
        return named
    # The same command twice (at other times, say) is told apart by its count so far.
    state.seen[(user, command.written)] += 1
    return job_name(command, user, state.seen[(user, command.written)])


def _directive_name(comments: list[str]) -> str | None:
    found = None
    for comment in _own_comments(comments):
        match = _DIRECTIVE.fullmatch(comment)
        if match is None:
            continue
        for setting in match.group(1).split():
            key, equals, value = setting.partition("=")
            if key != "name" or not equals:
                raise ValueError(f"`# tasse:` knows only name=NAME (got {setting!r})")
            if not re.fullmatch(TASK_NAME_PATTERN, value):
                raise ValueError(
                    f"`# tasse: name={value}`: a task name is letters, digits, . _ - "
                    "(at most 64, starting with a letter or digit)"
                )
            found = value
    return found


def _own_comments(comments: list[str]) -> list[str]:
    """The comment lines that belong to the job below them: up to a commented-out line."""
    own: list[str] = []
    for comment in reversed(comments):
        body = comment[1:]
        if parse_variable(body) is not None or _is_job_line(body):
            break
        own.append(comment)
    return own[::-1]


def _description(comments: list[str]) -> str:
    lines = [c[1:].strip(" \t") for c in _own_comments(comments) if not _DIRECTIVE.fullmatch(c)]
    return "\n".join(line for line in lines if line)


def _is_job_line(text: str) -> bool:
    for system in (False, True):
        try:
            split_job(text, system)
        except ValueError:
            continue
        return True
    return False
