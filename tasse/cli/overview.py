"""`tasse status` (every task's last and next run, broken ones first to the eye) and
`tasse list` (every task, wherever it is defined: folder, API or seed file)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

from tasse.cli.history import took
from tasse.cli.sources import opened, source_options
from tasse.cli.tables import DIM, RED, YELLOW, duration, moment, piped, print_json, print_table
from tasse.models import TaskInfo, TaskState
from tasse.settings import Settings

STATUS_EXAMPLES = """\
examples:
  tasse status                             every task: state, last run, next run
  tasse status --url http://tasse.internal:4243
  tasse status --json | jq '.[] | select(.state == "broken") | .name'

Broken tasks are shown in red (on a terminal, unless NO_COLOR is set) and their errors
are listed under the table."""

LIST_EXAMPLES = """\
examples:
  tasse list                               every task, its source, schedule and next run
  tasse list --json"""

#: how a task's state is coloured on a terminal
STATE_COLOURS = {
    TaskState.broken: RED,
    TaskState.failed: YELLOW,
    TaskState.paused: DIM,
    TaskState.disabled: DIM,
}
#: what `--json` gives of each task: the same keys with or without a server
STATUS_KEYS = {"name", "source", "state", "error", "paused", "enabled", "next_run_at", "last_run"}
LIST_KEYS = STATUS_KEYS - {"last_run"} | {"title", "description", "schedules", "folder"}


def add_overview_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register `tasse status` and `tasse list`."""
    parents = [common, source_options()]
    for name, helped, examples, handler in (
        (
            "status",
            "every task's last and next run; broken ones stand out",
            STATUS_EXAMPLES,
            _status,
        ),
        ("list", "every task (folder, API, seed) and its schedule", LIST_EXAMPLES, _list),
    ):
        command = commands.add_parser(
            name,
            parents=parents,
            help=helped,
            epilog=examples,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.set_defaults(handler=piped(handler))


def _status(settings: Settings, args: argparse.Namespace) -> int:
    with opened(settings, args) as source:
        tasks = source.tasks()
    if args.json:
        print_json([task.model_dump(mode="json", include=STATUS_KEYS) for task in tasks])
        return 0
    header = ("NAME", "STATE", "LAST RUN", "LAST AT", "TOOK", "NEXT RUN")
    print_table(header, [_status_row(task) for task in tasks], _colours(tasks))
    broken = [task for task in tasks if task.state is TaskState.broken]
    for task in broken:
        print(f"\n{task.name}: {task.error}")
    states = Counter(task.state.value for task in tasks)
    counted = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
    print(f"{len(tasks)} task(s){': ' + counted if counted else ''}", file=sys.stderr)
    return 0


def _status_row(task: TaskInfo) -> tuple[str, ...]:
    last = task.last_run
    return (
        task.name,
        task.state.value,
        last.status.value if last else "-",
        moment(last.started_at or last.scheduled_at) if last else "-",
        duration(took(last)) if last else "-",
        moment(task.next_run_at),
    )


def _list(settings: Settings, args: argparse.Namespace) -> int:
    with opened(settings, args) as source:
        tasks = source.tasks()
    if args.json:
        print_json([task.model_dump(mode="json", include=LIST_KEYS) for task in tasks])
        return 0
    header = ("NAME", "SOURCE", "SCHEDULE", "NEXT RUN", "STATE")
    print_table(header, [_list_row(task) for task in tasks], _colours(tasks))
    return 0


def _list_row(task: TaskInfo) -> tuple[str, ...]:
    schedule = "; ".join(_schedule(item) for item in task.schedules) or "on demand"
    return (task.name, task.source, schedule, moment(task.next_run_at), task.state.value)


def _schedule(item: dict[str, Any] | str) -> str:
    if isinstance(item, str):
        return item  # a crontab line, as written
    fields = " ".join(f"{key}={value}" for key, value in item.items() if key != "trigger")
    return f"{item.get('trigger', '?')} {fields}".strip()


def _colours(tasks: list[TaskInfo]) -> list[str | None]:
    return [STATE_COLOURS.get(task.state) for task in tasks]
