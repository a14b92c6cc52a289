"""`tasse env NAME | --gc`, and the environment `tasse run` uses: the same one as the server's."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tasse.cli.build_progress import build_progress
from tasse.envs.environments import EnvCache, Environment
from tasse.envs.installer import EnvBuildError
from tasse.envs.interpreters import NoInterpreterError
from tasse.envs.plans import EnvPlan, pick_installer, plan
from tasse.envs.provisioner import LEFTOVER_AGE
from tasse.errors import TaskEnvError, TasseError
from tasse.settings import Settings
from tasse.store.log_files import LogLayout
from tasse.tasks import discovery
from tasse.tasks.task import Task


def add_env_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register `tasse env`."""
    env = commands.add_parser(
        "env",
        parents=[common],
        help="show (or build) a task's Python environment; `tasse env gc` collects garbage",
    )
    env.add_argument(
        "name", nargs="?", help="a task name (`gc` alone, with no task of that name: as --gc)"
    )
    env.add_argument(
        "--gc", action="store_true", help="remove the environments no task folder needs"
    )
    env.add_argument("--build", action="store_true", help="build it now if it is not built")
    env.add_argument("--rebuild", action="store_true", help="build it again from scratch")
    env.add_argument(
        "--max-age-days",
        type=float,
        help="with gc: remove environments unused this long (default: TASSE_ENV_MAX_AGE_DAYS)",
    )
    env.set_defaults(handler=_env)


def cache_for(settings: Settings) -> EnvCache:
    """The environment cache the server uses too."""
    return EnvCache(settings.venvs_dir, settings.find_links, settings.env_build_timeout)


def plan_for(settings: Settings, task: Task) -> EnvPlan | None:
    """The task's environment plan, as the server makes it; None when it needs none."""
    if task.dependencies is None:
        return None
    try:
        return plan(task, task.dependencies, pick_installer(settings.installer))
    except NoInterpreterError as error:
        raise TaskEnvError(task.name, f"has no interpreter: {error}") from None


def environment_for(settings: Settings, task: Task, rebuild: bool = False) -> Environment | None:
    """The task's environment, built here and now (output to the terminal) if needed."""
    planned = plan_for(settings, task)
    if planned is None:
        return None
    cache = cache_for(settings)
    found = None if rebuild else cache.find(planned.hash)
    if found is not None:
        return found
    print(
        f"tasse: building the environment of task {task.name!r} ({planned.hash})…", file=sys.stderr
    )
    try:
        with build_progress(cache.log_file(planned.hash)):
            return cache.build(planned, force=rebuild)
    except (EnvBuildError, OSError) as error:
        raise TaskEnvError(task.name, f"failed to build: {error}") from None


def env_problem(settings: Settings, task: Task, build: bool = False) -> TaskEnvError | None:
    """What keeps the task from its environment: no interpreter fits, or the build fails.

    Without `build`, only planning runs (cheap) and a build is judged by its last attempt
    here (by the server or `tasse env`); with it, an environment not built yet is built.
    """
    try:
        planned = plan_for(settings, task)
        if planned is None:
            return None
        if build:
            environment_for(settings, task)
            return None
    except TaskEnvError as error:
        return error
    cache = cache_for(settings)
    if cache.find(planned.hash) is None and _last_build_failed(cache, planned.hash):
        return TaskEnvError(
            task.name,
            f"failed to build the last time (the installer's output: "
            f"{cache.log_file(planned.hash)}); `tasse env {task.name} --rebuild` tries again",
        )
    return None


def _env(settings: Settings, args: argparse.Namespace) -> int:
    if args.gc or _means_gc(settings, args.name):
        if args.gc and args.name is not None:
            raise TasseError("tasse env --gc takes no task name")
        return _collect_garbage(settings, args)
    if args.name is None:
        raise TasseError("tasse env: give a task name, or --gc")
    task = discovery.load_by_name(settings.tasks_dir, args.name)
    planned = plan_for(settings, task)
    if planned is None:
        print(
            f"task {task.name!r} needs no Python environment (no Python entrypoint or "
            "dependency file)"
        )
        return 0
    if args.build or args.rebuild:
        environment_for(settings, task, rebuild=args.rebuild)
    cache = cache_for(settings)
    found = cache.find(planned.hash)
    deps = planned.dependencies
    rows = {
        "status": "ready" if found else _not_ready(cache, planned.hash),
        "hash": planned.hash,
        "python": str(planned.interpreter),
        "installer": planned.installer,
        "source": deps.source or "none (a bare environment)",
        "requirements": ", ".join(deps.requirements) or "-",
        "path": str(found.path) if found else "-",
        "built at": found.built_at.isoformat(timespec="seconds") if found else "-",
        "log": str(LogLayout(settings.logs_dir).env_log(task.name)),
    }
    if deps.note:
        rows["note"] = deps.note
    for key, value in rows.items():
        print(f"{key + ':':<14}{value}")
    return 0


def _means_gc(settings: Settings, name: str | None) -> bool:
    # `tasse env gc` predates --gc: it still collects, unless a task is named gc (then it is
    # that task's environment, and --gc collects).
    return name == "gc" and not (settings.tasks_dir / name).is_dir()


def _not_ready(cache: EnvCache, digest: str) -> str:
    if _last_build_failed(cache, digest):
        return f"failed (the installer's output: {cache.log_file(digest)}; --rebuild tries again)"
    return "not built (the server builds it ahead; --build builds it now)"


def _last_build_failed(cache: EnvCache, digest: str) -> bool:
    try:
        return "\n# exit code" in cache.log_file(digest).read_text(errors="replace")
    except FileNotFoundError:
        return False


def _collect_garbage(settings: Settings, args: argparse.Namespace) -> int:
    keep = set()
    for result in discovery.scan(settings.tasks_dir, {}).loaded.values():
        if isinstance(result, Task):
            try:
                planned = plan_for(settings, result)
            except TasseError:
                continue
            if planned is not None:
                keep.add(planned.hash)
    days = settings.env_max_age_days if args.max_age_days is None else args.max_age_days
    removed = cache_for(settings).collect_garbage(keep, days * 86400, LEFTOVER_AGE)
    for digest in removed:
        print(f"removed {settings.venvs_dir / digest}")
    print(
        f"{len(removed)} environment(s) removed; the {len(keep)} the task folders need are kept",
        file=sys.stderr,
    )
    return 0
