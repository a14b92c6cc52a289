"""`tasse new NAME`: a task folder to start from (task.yaml, task.py, requirements.txt).

The folder is written under a hidden name and renamed into place, so a running server
(which ignores hidden folders) sees the whole task at once, never half of it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import InvalidRequirement, Requirement

from tasse.cli.tables import print_json
from tasse.errors import TaskNameError, TasseError
from tasse.schedule.triggers import crontab_trigger
from tasse.settings import Settings
from tasse.tasks import discovery
from tasse.tasks.triggers import prepare
from tasse.values import TASK_NAME_PATTERN

EXAMPLES = """\
examples:
  tasse new backup                              a task run on demand
  tasse new backup --schedule "0 3 * * *"       every night at 03:00
  tasse new report --schedule "@hourly" --requirements "requests>=2" --requirements rich
  tasse new ping --schedule "*/30 * * * * *"    every 30 seconds (6 fields: seconds first)"""

TASK_PY = '''\
"""{name}: what this task does, in one line."""

import os


def main() -> None:
    # Tasse runs this file in the task folder; everything printed goes to its log.
    print(f"Hello from {{os.environ.get('TASSE_TASK', '{name}')}}, "
          f"run {{os.environ.get('TASSE_RUN_ID', '(by hand)')}}")


if __name__ == "__main__":
    main()
'''


def add_new_command(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register `tasse new`."""
    new = commands.add_parser(
        "new",
        parents=[common],
        help="create a task folder to start from",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    new.add_argument("name", help=f"the task's name ({TASK_NAME_PATTERN})")
    new.add_argument(
        "--schedule",
        action="append",
        default=[],
        metavar="CRONTAB",
        help='a crontab line like "*/5 * * * *" or "@daily" (repeatable; none: on demand)',
    )
    new.add_argument(
        "--requirements",
        action="append",
        default=[],
        metavar="REQUIREMENT",
        help='a package the task needs, like "requests>=2" (repeatable, or comma-separated)',
    )
    new.add_argument("--description", help="one line saying what the task does")
    new.add_argument("--json", action="store_true", help="what was written, as JSON")
    new.set_defaults(handler=_new)


def _new(settings: Settings, args: argparse.Namespace) -> int:
    name = args.name
    if not re.fullmatch(TASK_NAME_PATTERN, name):
        raise TaskNameError(name)
    folder = settings.tasks_dir / name
    if folder.exists():
        raise TasseError(f"{folder} exists already: `tasse new` leaves it as it is")
    files = _files(name, args, settings.timezone)
    _write(settings.tasks_dir, folder, files)
    _check(settings, name, folder)
    written = [str(folder / file) for file in files]
    if args.json:
        print_json({"name": name, "folder": str(folder), "files": written})
        return 0
    for path in written:
        print(f"wrote {path}")
    print(
        f"\nrun it now:   tasse run {name}{_data_dir_flag(settings)}\n"
        f"check it:     tasse validate{_data_dir_flag(settings)}\n"
        "a running server picks it up by itself; edit task.py to make it yours",
        file=sys.stderr,
    )
    return 0


def _files(name: str, args: argparse.Namespace, timezone: str) -> dict[str, str]:
    """The files of the new folder, by name; bad schedules and requirements refused first."""
    spec: dict[str, Any] = {"description": args.description or f"{name}: what it does"}
    for line in args.schedule:
        try:
            crontab_trigger(line, timezone)
        except (ValueError, KeyError) as error:
            raise TasseError(f"--schedule {line!r}: {error}") from None
    if args.schedule:
        spec["schedules"] = list(args.schedule)
    files = {"task.yaml": yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)}
    files["task.py"] = TASK_PY.format(name=name)
    requirements = [item.strip() for given in args.requirements for item in given.split(",")]
    if requirements := [item for item in requirements if item]:
        for item in requirements:
            try:
                Requirement(item)
            except InvalidRequirement as error:
                raise TasseError(f"--requirements {item!r}: {error}") from None
        files["requirements.txt"] = "".join(f"{item}\n" for item in requirements)
    return files


def _write(tasks_dir: Path, folder: Path, files: dict[str, str]) -> None:
    tasks_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".new-{folder.name}-", dir=tasks_dir))
    try:
        for file, text in files.items():
            (staging / file).write_text(text, encoding="utf-8")
        staging.chmod(0o755)  # mkdtemp's 0700 would keep a server of another user out
        # rename() would replace an empty folder made meanwhile: refuse that too.
        if folder.exists():
            raise TasseError(f"{folder} was made just now: `tasse new` leaves it as it is")
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _check(settings: Settings, name: str, folder: Path) -> None:
    """The folder loads as the server will load it (a failure here is a bug of ours)."""
    result = prepare(discovery.load_by_name(settings.tasks_dir, name), settings.timezone)
    if isinstance(result, TasseError):
        raise TasseError(f"{folder} was written but does not load: {result}")


def _data_dir_flag(settings: Settings) -> str:
    return "" if settings.data_dir == Path("data") else f" --data-dir {settings.data_dir}"
