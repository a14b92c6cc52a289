"""`tasse import crontab FILE|-`: a task folder (task.yaml + task.sh) per line of a crontab.

For people leaving cron for good: the folders are theirs to edit from then on. Each job
becomes what `--crontab` would make of it (tasse.tasks.crontab_files), written down: its
schedule, time zone, environment, description and `%` input in task.yaml, its command in
task.sh.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tasse.errors import TasseError
from tasse.settings import Settings
from tasse.tasks.crontab_files import CronJob, has_user_field, parse_crontab

#: how a folder the import would write looks in `--dry-run` and in what it reports
_RULE = "-" * 72


def add_import_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register `tasse import crontab`."""
    importing = commands.add_parser("import", help="write task folders from another scheduler")
    kinds = importing.add_subparsers(dest="kind", required=True)
    crontab = kinds.add_parser(
        "crontab",
        parents=[common],
        help="a task folder (task.yaml + task.sh) per line of a crontab",
        epilog="example: tasse import crontab /etc/cron.d/backup --dry-run",
    )
    crontab.add_argument("file", help="the crontab, or - to read it from standard input")
    crontab.add_argument("--tasks-dir", type=Path, help="where to write (default: DATA_DIR/tasks)")
    crontab.add_argument(
        "--system",
        action="store_true",
        help="lines have a user field, as /etc/crontab (told by place for /etc/cron.d/*)",
    )
    crontab.add_argument("--dry-run", action="store_true", help="show what would be written")
    crontab.add_argument("--force", action="store_true", help="overwrite existing task folders")
    crontab.set_defaults(handler=_import_crontab)


def _import_crontab(settings: Settings, args: argparse.Namespace) -> int:
    origin = "<stdin>" if args.file == "-" else args.file
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TasseError(f"crontab {origin}: cannot be read: {error}") from None
    system = args.system or (args.file != "-" and has_user_field(args.file))
    crontab = parse_crontab(text, origin, system)
    tasks_dir: Path = args.tasks_dir or settings.tasks_dir
    taken = [job for job in crontab.jobs if (tasks_dir / job.definition.name).exists()]
    if taken and not args.force and not args.dry_run:
        names = ", ".join(job.definition.name for job in taken)
        raise TasseError(f"{tasks_dir}: task folders exist already: {names} (--force replaces)")
    for job in crontab.jobs:
        folder = tasks_dir / job.definition.name
        files = {"task.yaml": task_yaml(job, origin), "task.sh": task_sh(job, origin)}
        if args.dry_run:
            _show(folder, files, exists=folder.exists())
        else:
            _write(folder, files)
            print(f"wrote {folder}/ (task.yaml, task.sh)")
    for problem in crontab.problems:
        print(f"tasse: {problem}", file=sys.stderr)
    done = "would write" if args.dry_run else "wrote"
    print(
        f"{done} {len(crontab.jobs)} task folder(s) in {tasks_dir}; "
        f"{len(crontab.problems)} line(s) not imported",
        file=sys.stderr,
    )
    return 1 if crontab.problems else 0


def task_yaml(job: CronJob, origin: str) -> str:
    """The task.yaml of a job: when, in which zone, with what environment and input."""
    definition = job.definition
    keys = ("description", "schedule", "timezone", "env", "stdin")
    data = {key: value for key in keys if (value := getattr(definition, key))}
    header = f"# Imported from {origin}, line {job.line}, by `tasse import crontab`.\n"
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return header + body


class _Dumper(yaml.SafeDumper):
    """Writes text of several lines (a `%` input, a description) as a `|` block, as typed."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value.rstrip("\n") or value.endswith("\n") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def task_sh(job: CronJob, origin: str) -> str:
    """The task.sh of a job: its command, as cron handed it to the shell."""
    notes = [
        "#!/usr/bin/env bash",
        f"# From {origin}, line {job.line}; cron ran it with `{job.shell} -c`, in $HOME.",
        "# Tasse runs task.sh with bash, in this folder.",
    ]
    if job.user is not None:
        notes.append(f"# The line was for user {job.user}; Tasse runs it as its own user.")
    return "\n".join([*notes, job.command.command, ""])


def _show(folder: Path, files: dict[str, str], exists: bool) -> None:
    replaced = " (exists: --force replaces its task.yaml and task.sh)" if exists else ""
    print(f"{_RULE}\n{folder}/{replaced}")
    for name, content in files.items():
        print(f"--- {name}\n{content}", end="" if content.endswith("\n") else "\n")


def _write(folder: Path, files: dict[str, str]) -> None:
    # Written beside it and moved into place: a running server's watcher never sees a
    # task.yaml without its task.sh.
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name, content in files.items():
            (staging / name).write_text(content, encoding="utf-8")
        (staging / "task.sh").chmod(0o755)  # runnable by hand as well
        if folder.exists():
            for name in files:
                os.replace(staging / name, folder / name)
        else:
            staging.chmod(0o755)
            os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
