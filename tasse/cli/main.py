"""`tasse serve | worker | run | list | validate | next | env | pause | resume | import |
status | logs | runs | new`: the command line; settings built here. Flags without a
sub-command serve, as Supertask's command line does."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from tasse import __version__
from tasse.cli.env import add_env_commands, env_problem, environment_for
from tasse.cli.examples import add_examples
from tasse.cli.history import add_history_commands
from tasse.cli.import_crontab import add_import_commands
from tasse.cli.overview import add_overview_commands
from tasse.cli.pause import add_pause_commands
from tasse.cli.remote import server_options
from tasse.cli.scaffold import add_new_command
from tasse.cli.upcoming import served_fires
from tasse.cli.worker import add_worker_command
from tasse.errors import TaskNameError, TasseError
from tasse.models import Run, RunRequest, RunStatus, RunTrigger, new_run_id
from tasse.runs.runner import run_in_foreground
from tasse.schedule.triggers import RebootTrigger, crontab_trigger, upcoming
from tasse.settings import Settings
from tasse.store.data_folder import check_writable
from tasse.store.data_lock import DataLock
from tasse.store.runs import check_store
from tasse.tasks import discovery
from tasse.tasks.registry import Prepared
from tasse.tasks.task import Task
from tasse.tasks.triggers import prepare

_FLAGS = {  # command-line flag → Settings field
    "data_dir": "data_dir",
    "http_listen_address": "http_listen_address",
    "store_address": "store_address",
    "store_schema_name": "store_schema_name",
    "store_table_name": "store_table_name",
    "log_level": "log_level",
    "api_token_file": "api_token_file",
    "installer": "installer",
    "max_concurrent_runs": "max_concurrent_runs",
    "keep_runs": "keep_runs",
    "keep_runs_days": "keep_runs_days",
    "pre_seed_jobs": "pre_seed_jobs",
    "pre_seed_interval": "pre_seed_interval",
    "pre_delete_jobs": "pre_delete_jobs",
    "find_links": "find_links",
    "crontab": "crontab",
    "system_crontab": "system_crontab",
    "notify": "notify",
    "notify_file": "notify_file",
    "public_url": "public_url",
    "cluster": "cluster",
    "node_name": "node_name",
    "run_on": "run_on",
    "queues": "queues",
    "concurrency": "concurrency",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tasse` command."""
    argv = _serve_by_default(list(sys.argv[1:] if argv is None else argv))
    # Everything after `--` belongs to the task (`tasse run NAME -- --verbose`).
    passthrough = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = _parser().parse_args(argv[: len(argv) - len(passthrough) - bool(passthrough)])
    args.passthrough = passthrough
    try:
        # `is not None`: `--keep-runs 0` is a choice (no limit), not an absent flag.
        flags = {f: v for k, f in _FLAGS.items() if (v := getattr(args, k, None)) is not None}
        if getattr(args, "debug", False):
            flags.setdefault("log_level", "DEBUG")
        settings = Settings(**flags)
    except ValidationError as error:
        detail = error.errors()[0]
        print(
            f"tasse: setting {'.'.join(map(str, detail['loc']))}: {detail['msg']}", file=sys.stderr
        )
        return 2
    try:
        code: int = args.handler(settings, args)
    except TasseError as error:
        print(f"tasse: {error}", file=sys.stderr)
        return 1
    return code


#: what the command line takes first that is not a sub-command, yet not serving either
_TOP_LEVEL_FLAGS = ("-h", "--help", "--version")


def _serve_by_default(argv: list[str]) -> list[str]:
    """Supertask's command line has no sub-command: flags alone (or nothing) mean `serve`."""
    # Only flags: a mistyped sub-command (`tasse lsit`) stays argparse's "invalid choice".
    if not argv or (argv[0].startswith("-") and argv[0].split("=")[0] not in _TOP_LEVEL_FLAGS):
        return ["serve", *argv]
    return argv


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tasse",
        description="A folder is a task. Flags without a command serve: "
        "`tasse --pre-seed-jobs=cronjobs.json` is `tasse serve --pre-seed-jobs=cronjobs.json`.",
    )
    parser.add_argument("--version", action="version", version=f"tasse {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", help="folder with tasks/ and logs/ (default: data)")
    common.add_argument("--store-address", help="SQLAlchemy URL of the run history, or memory://")
    common.add_argument("--store-schema-name", help="database schema of the store's tables")
    common.add_argument("--store-table-name", help="prefix of the store's tables (default: tasse)")
    common.add_argument("--log-level", help="CRITICAL, ERROR, WARNING, INFO or DEBUG")
    common.add_argument("--installer", help="auto (uv if installed), uv or pip")
    common.add_argument("--find-links", help="a folder of wheels the installer may use")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", parents=[common], help="schedule tasks, serve the API")
    serve.add_argument("--http-listen-address", help="HOST:PORT (default: 127.0.0.1:4243)")
    serve.add_argument("--api-token-file", help="file with the token mutating routes require")
    serve.add_argument(
        "--max-concurrent-runs", type=int, help="runs alive at once; more wait, queued"
    )
    serve.add_argument(
        "--keep-runs", type=int, help="runs kept per task, history and logs (0: no limit)"
    )
    serve.add_argument(
        "--keep-runs-days", type=float, help="days finished runs are kept (0: no limit)"
    )
    serve.add_argument("--pre-seed-jobs", help="file or URL of task definitions to keep loaded")
    serve.add_argument(
        "--pre-seed-interval", type=float, help="seconds between fetches of a seed URL"
    )
    serve.add_argument(
        "--crontab",
        action="append",
        metavar="FILE",
        help="a crontab whose lines to run as tasks, kept applied (repeatable)",
    )
    serve.add_argument(
        "--system-crontab",
        action="append",
        metavar="FILE",
        help="a crontab with a user field, like /etc/crontab (repeatable)",
    )
    serve.add_argument(
        "--notify",
        action="append",
        metavar="URL",
        help="a notification target, Apprise URL or webhook+https://… (repeatable)",
    )
    serve.add_argument("--notify-file", help="a file of notification targets, one a line")
    serve.add_argument("--public-url", help="the dashboard's address, for links in messages")
    serve.add_argument(
        "--pre-delete-jobs",
        action="store_true",
        default=None,
        help="remove every API and seed task from the store first",
    )
    serve.add_argument(
        "--cluster",
        action="store_true",
        default=None,
        help="one of several nodes sharing a PostgreSQL store (docs/cluster.md)",
    )
    serve.add_argument("--node-name", help="this node's name in the cluster (default: host name)")
    serve.add_argument(
        "--run-on",
        choices=("node", "workers"),
        help="in a cluster: runs run on this node (default) or on `tasse worker` nodes",
    )
    # Supertask's own two flags: its logging is on by default, `--debug` makes it verbose.
    serve.add_argument("--verbose", action="store_true", help="log (on by default; Supertask's)")
    serve.add_argument("--debug", action="store_true", help="log at DEBUG (as --log-level DEBUG)")
    serve.set_defaults(handler=_serve)
    add_worker_command(commands, common)

    run = commands.add_parser("run", parents=[common], help="run a task once, in the foreground")
    run.add_argument("name")
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="becomes TASSE_PARAM_<NAME> (repeatable)",
    )
    run.epilog = "Arguments after `--` are appended to the task's command."
    run.set_defaults(handler=_run)

    validate = commands.add_parser(
        "validate", parents=[common], help="check every task folder; exit 1 if any is broken"
    )
    validate.add_argument(
        "--build",
        action="store_true",
        help="build the environments not built yet (by default they are only planned)",
    )
    validate.set_defaults(handler=_validate)

    upcoming_ = commands.add_parser(
        "next",
        parents=[common, server_options()],
        help="the next fire times of a task (the running server's, if one runs) or a crontab line",
    )
    upcoming_.add_argument("name", help='a task name, or a crontab line like "*/5 * * * *"')
    upcoming_.add_argument("--timezone", help="for a crontab line (default: the server's)")
    upcoming_.add_argument("--count", type=int, default=5)
    upcoming_.set_defaults(handler=_next)

    add_env_commands(commands, common)
    add_pause_commands(commands, common)
    add_import_commands(commands, common)
    add_overview_commands(commands, common)
    add_history_commands(commands, common)
    add_new_command(commands, common)
    add_examples(parser)
    return parser


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    # The data folder first, before the store is opened (or migrated), runs are marked
    # interrupted, leftovers are killed or the port is bound: a second server on the same
    # folder must refuse at once, touching nothing. Released once the server has stopped.
    # Before it, whether the folder can be written at all: one line naming the fix, not a
    # traceback (a bind mount the container's user does not own).
    check_writable(settings.data_dir)
    with DataLock(settings.data_dir):
        from tasse.http.server import serve  # only `serve` needs the server stack

        # A bad address is one clear line here, not a traceback from the server's start-up.
        check_store(settings.store_url, settings.store_schema_name, settings.store_table_name)
        logging.basicConfig(
            level=settings.log_level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
        )
        return 0 if serve(settings) else 1


def _load(settings: Settings, name: str) -> tuple[Task, tuple[Any, ...]]:
    result = prepare(discovery.load_by_name(settings.tasks_dir, name), settings.timezone)
    if isinstance(result, TasseError):
        raise result
    return result


def _run(settings: Settings, args: argparse.Namespace) -> int:
    task, _ = _load(settings, args.name)
    params = dict(p.split("=", 1) if "=" in p else (p, "") for p in args.param)
    request = RunRequest(args=args.passthrough, params=params)
    now = datetime.now(ZoneInfo(task.spec.timezone or settings.timezone))
    run = Run(
        id=new_run_id(datetime.now(UTC)),
        task=task.name,
        trigger=RunTrigger.manual,
        status=RunStatus.running,
        scheduled_at=now,
        started_at=now,
    )
    return run_in_foreground(task, run, request, environment_for(settings, task))


def _scan(settings: Settings) -> dict[str, Prepared | TasseError]:
    scan = discovery.scan(settings.tasks_dir, {})
    prepared: dict[str, Prepared | TasseError] = {
        name: prepare(result, settings.timezone) for name, result in scan.loaded.items()
    }
    for name in scan.rejected:
        prepared[name] = TaskNameError(name)
    return dict(sorted(prepared.items()))


def _validate(settings: Settings, args: argparse.Namespace) -> int:
    results = _scan(settings)
    broken: dict[str, Exception] = {}
    for name, result in results.items():
        # A task whose environment cannot be had is as broken as a bad task.yaml: no run of
        # it would ever run its code.
        if isinstance(result, Exception):
            broken[name] = result
        elif (problem := env_problem(settings, result[0], args.build)) is not None:
            broken[name] = problem
    for error in broken.values():
        print(error)
    print(
        f"{len(results) - len(broken)} task(s) valid, {len(broken)} broken "
        f"in {Path(settings.tasks_dir)}",
        file=sys.stderr,
    )
    return 1 if broken else 0


def _next(settings: Settings, args: argparse.Namespace) -> int:
    # A task name has no blanks of any kind; a crontab line has (tabs, or non-ASCII ones
    # that the parser then refuses by name).
    if len(args.name.split()) > 1 or args.name.strip().startswith("@"):
        zone = args.timezone or settings.timezone
        try:
            triggers: Sequence[Any] = [crontab_trigger(args.name, zone)]
        except (ValueError, KeyError) as error:
            raise TasseError(f"crontab line {args.name!r}: {error}") from None
        what, served = f"crontab line {args.name!r}", None
    else:
        task, triggers = _load(settings, args.name)
        what = f"task {task.name!r}" + ("" if task.spec.enabled else " (disabled)")
        triggers = triggers if task.spec.enabled else []
        # A running server's times, as `/next` lists them (an interval counts from when
        # the server scheduled it), in the zone this process would show them in.
        zone = ZoneInfo(task.spec.timezone or settings.timezone)
        served = served_fires(settings, task.name, args.count)
        served = None if served is None else [fire.astimezone(zone) for fire in served]
    fires = upcoming(triggers, args.count, datetime.now(UTC)) if served is None else served
    reboot = any(isinstance(trigger, RebootTrigger) for trigger in triggers)
    if reboot:
        print(f"{what} fires once each time the server starts (@reboot)", file=sys.stderr)
    if not fires and not reboot:
        print(f"{what} has no upcoming fire time", file=sys.stderr)
    for fire in fires:
        print(fire.isoformat())
    return 0
