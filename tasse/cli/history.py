"""`tasse logs NAME [-f] [--run ID]` and `tasse runs NAME`: a task's output and its history."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime
from typing import Any

from tasse.cli.sources import Ended, Skipped, Source, opened, source_options
from tasse.cli.tables import (
    STATUS_COLOURS,
    duration,
    moment,
    piped,
    print_json,
    print_json_line,
    print_table,
)
from tasse.errors import TaskNameError, TasseError
from tasse.models import Run, RunStatus
from tasse.settings import Settings
from tasse.values import TASK_NAME_PATTERN

LOGS_EXAMPLES = """\
examples:
  tasse logs helloworld                    the output of its newest run
  tasse logs helloworld -f                 follow it live until the run ends
  tasse logs helloworld --run 20260102-101500-123456-9f3a1c
  tasse logs helloworld --url http://tasse.internal:4243 --json

With -f the exit code is the run's: 0 when it succeeded, 1 otherwise; with --json
it prints one JSON object a line: {"log": text} as it comes, then {"end": run}."""

RUNS_EXAMPLES = """\
examples:
  tasse runs helloworld                    the newest 20 runs
  tasse runs helloworld --status failed -n 5
  tasse runs helloworld --json | jq '.[0].status'"""


def add_history_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register `tasse logs` and `tasse runs`."""
    parents = [common, source_options()]
    logs = commands.add_parser(
        "logs",
        parents=parents,
        help="print (or follow) the log of a task's newest run",
        epilog=LOGS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    logs.add_argument("name", help="the task")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="follow the live log until the run ends"
    )
    logs.add_argument("--run", metavar="ID", help="this run instead of the newest")
    logs.set_defaults(handler=piped(_logs))

    runs = commands.add_parser(
        "runs",
        parents=parents,
        help="a task's run history, newest first",
        epilog=RUNS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    runs.add_argument("name", help="the task")
    runs.add_argument("--status", choices=[status.value for status in RunStatus])
    runs.add_argument("-n", "--limit", type=_positive, default=20, help="how many (default 20)")
    runs.set_defaults(handler=piped(_runs))


def _logs(settings: Settings, args: argparse.Namespace) -> int:
    name = _task_name(args.name)
    with opened(settings, args) as source:
        run = _chosen_run(source, name, args.run)
        if args.follow:
            return _follow(source, run, args.json)
        log = source.log(run)
        if args.json:
            text = log.decode("utf-8", errors="replace")  # JSON holds text, not bytes
            print_json({"run": run.model_dump(mode="json"), "log": text})
            return 0
        sys.stdout.buffer.write(log)
        sys.stdout.flush()
        _say_where_it_stands(run, bool(log))
    return 0


def _chosen_run(source: Source, name: str, run_id: str | None) -> Run:
    if run_id is None:
        newest = source.runs(name, None, 1)
        if not newest:
            raise TasseError(f"task {name!r} has no runs yet (`tasse run {name}` runs it here)")
        return newest[0]
    run = source.run(run_id)
    if run.task != name:
        raise TasseError(f"run {run_id!r} is a run of task {run.task!r}, not of {name!r}")
    return run


def _follow(source: Source, run: Run, as_json: bool) -> int:
    """Print the log as it comes; the exit code says whether the run succeeded."""
    for piece in source.follow(run):
        if isinstance(piece, Ended):
            run = piece.run
            if as_json:
                print_json_line({"end": run.model_dump(mode="json")})
            break
        if isinstance(piece, Skipped):
            print(piece.note, file=sys.stderr)
        elif as_json:
            print_json_line({"log": piece})
        else:
            sys.stdout.write(piece)
        sys.stdout.flush()
    if not as_json:
        _say_where_it_stands(run, True)
    return 0 if run.status is RunStatus.succeeded else 1


def _say_where_it_stands(run: Run, had_output: bool) -> None:
    # On stderr: the log itself stays byte for byte what the task printed. A success with
    # output needs no word; anything else would leave the reader guessing.
    if run.status is RunStatus.succeeded and had_output:
        return
    why = f" ({run.error})" if run.error else ""
    live = "; -f follows it" if not run.status.is_final else ""
    print(f"tasse: run {run.id}: {run.status.value}{why}{live}", file=sys.stderr)


def _runs(settings: Settings, args: argparse.Namespace) -> int:
    name = _task_name(args.name)
    status = RunStatus(args.status) if args.status else None
    with opened(settings, args) as source:
        runs = source.runs(name, status, args.limit)
    if args.json:
        print_json([run.model_dump(mode="json") for run in runs])
        return 0
    if not runs:
        print(f"task {name!r} has no runs" + (f" {status.value}" if status else ""))
        return 0
    header = ("ID", "TRIGGER", "STATUS", "STARTED", "DURATION", "EXIT", "ERROR")
    print_table(header, [_row(run) for run in runs], [STATUS_COLOURS.get(r.status) for r in runs])
    return 0


def _row(run: Run) -> tuple[str, ...]:
    code = "-" if run.exit_code is None else str(run.exit_code)
    return (
        run.id,
        run.trigger.value,
        run.status.value,
        moment(run.started_at or run.scheduled_at),
        duration(took(run)),
        code,
        run.error or "",
    )


def took(run: Run) -> float | None:
    """How long the run took, or has been running so far."""
    if run.started_at is None:
        return None
    end = run.finished_at or (None if run.status.is_final else datetime.now(UTC))
    return None if end is None else (end - run.started_at).total_seconds()


def _task_name(name: str) -> str:
    if not re.fullmatch(TASK_NAME_PATTERN, name):
        raise TaskNameError(name)
    return name


def _positive(text: str) -> int:
    number = int(text)
    if not 1 <= number <= 1000:
        raise argparse.ArgumentTypeError(f"{text} is not 1 to 1000")
    return number
