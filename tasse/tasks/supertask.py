"""Supertask's `cronjobs.json` items as Tasse definitions: names, titles, how a job is called.

A Supertask job has an integer `id`, a free-text `name` ("Example Python reference"),
`trigger_cron`, and `exec_python_ref` + `exec_args` (+ `exec_kwargs`) or `exec_sql`.
Its `name` becomes the task's title; the task's name is the `name` itself when that is a
valid task name already (seeds that loaded before keep their tasks and history), else a
slug of it ("example-python-reference"). Supertask calls `func(exec_args)`: the list is
one argument (its seeder passes `args=[cronjob.exec_args]`), so the definition's `args`
is `[exec_args]`.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from typing import Any

from tasse.values import TASK_NAME_PATTERN

#: the keys that make an item Supertask's rather than Tasse's
SUPERTASK_KEYS = frozenset(
    {"trigger_cron", "exec_python_ref", "exec_args", "exec_kwargs", "exec_sql"}
)
#: what Supertask itself writes into the file besides the job (its run state)
_KNOWN_KEYS = SUPERTASK_KEYS | {"name", "description", "enabled", "id", "last_run", "last_status"}
_TASK_NAME = re.compile(TASK_NAME_PATTERN)
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
#: a slug leaves room for `-<id>` within the 64 characters of a task name
_SLUG_LENGTH = 48


def is_supertask_item(item: dict[str, Any]) -> bool:
    """Whether a seed item is written in Supertask's shape."""
    return bool(SUPERTASK_KEYS & item.keys())


def slug(text: str) -> str:
    """A task name from free text: ASCII lower case, runs of anything else made one `-`."""
    # "Köln" is "koln", not "k-ln": letters lose their accents before the rest is cut.
    plain = unicodedata.normalize("NFKD", text.casefold()).encode("ascii", "ignore").decode()
    return _NOT_SLUG.sub("-", plain).strip("-")[:_SLUG_LENGTH].strip("-")


def task_names(items: Iterable[dict[str, Any]]) -> list[str | None]:
    """The task name of each Supertask item, unique where the items let it be.

    A name that is valid as it is stays as it is. A slug that another item's name or slug
    also gives gets `-<id>` on every item that shares it, so the names do not depend on
    the items' order. None for an item without a usable name (its problem is reported).
    """
    items = list(items)
    kept = [_kept_name(item) for item in items]
    slugs = [None if name else _slug_of(item) for item, name in zip(items, kept, strict=True)]
    taken = Counter(name for name in [*kept, *slugs] if name)
    names: list[str | None] = []
    for item, name, made in zip(items, kept, slugs, strict=True):
        if made is not None and taken[made] > 1 and isinstance(item.get("id"), int):
            made = f"{made}-{item['id']}"
        names.append(name or made)
    return names


def _kept_name(item: dict[str, Any]) -> str | None:
    name = item.get("name")
    return name if isinstance(name, str) and _TASK_NAME.fullmatch(name) else None


def _slug_of(item: dict[str, Any]) -> str | None:
    name, job_id = item.get("name"), item.get("id")
    made = slug(name) if isinstance(name, str) else ""
    if made:
        return made
    # A name of only punctuation (or none at all): the id is all there is to go by.
    return f"cronjob-{job_id}" if isinstance(job_id, int) else None


def from_supertask(job: dict[str, Any], where: str, name: str | None = None) -> dict[str, Any]:
    """A Supertask `cronjobs.json` job as a Tasse definition (named `name`, if given)."""
    unknown = sorted(map(str, set(job) - _KNOWN_KEYS))
    if unknown:
        raise ValueError(f"{where}: job {job.get('name')!r}: unknown key {unknown[0]!r}")
    if job.get("exec_sql") and job.get("exec_python_ref"):
        raise ValueError(
            f"{where}: job {job.get('name')!r} has both exec_sql and exec_python_ref: give one"
        )
    title = job.get("name")
    definition: dict[str, Any] = {"name": name or (task_names([job])[0] or title)}
    if isinstance(title, str) and title.strip():
        definition["title"] = title
    if isinstance(job.get("id"), int) and not isinstance(job["id"], bool):
        definition["cronjob_id"] = job["id"]
    definition.update(_what_to_run(job))
    if job.get("trigger_cron"):
        definition["schedule"] = job["trigger_cron"]
    if "description" in job:
        definition["description"] = job["description"]
    # Supertask runs only jobs marked enabled; an imported file keeps meaning that.
    definition["enabled"] = bool(job.get("enabled", False))
    return definition


def _what_to_run(job: dict[str, Any]) -> dict[str, Any]:
    if job.get("exec_sql"):
        return sql_definition(job["exec_sql"])
    if not job.get("exec_python_ref"):
        return nothing_to_run(job.get("name"))
    exec_args = job.get("exec_args")
    return {
        "python_ref": job.get("exec_python_ref"),
        # Supertask's call: `func(exec_args, **exec_kwargs)`, the list as one argument.
        "args": [exec_args if exec_args is not None else []],
        "kwargs": job.get("exec_kwargs") or {},
    }


def nothing_to_run(title: Any) -> dict[str, Any]:
    """What a job with neither `exec_python_ref` nor `exec_sql` runs: a line saying so."""
    # Supertask's form makes such jobs (a name, a crontab, enabled); each run of one says
    # in its log what it lacks, rather than the job being refused or silently doing nothing.
    message = f"cron job {title!r} has nothing to run yet: give it exec_python_ref or exec_sql"
    return {"command": ["echo", message]}


def sql_definition(statement: Any) -> dict[str, Any]:
    """What runs a Supertask `exec_sql` job: an `sql:` task (the SQL task kind's)."""
    # The SQL task kind runs it on the job store's database when no `database:` is given,
    # as Supertask's `exec_sql` meant.
    return {"sql": statement}
