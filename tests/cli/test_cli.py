"""The `tasse` command as a user types it: real processes, real task folders."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

from tests.conftest import MakeTask


def tasse(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tasse", *args, "--data-dir", str(data_dir)]
        if "--" not in args
        else [sys.executable, "-m", "tasse", args[0], "--data-dir", str(data_dir), *args[1:]],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_run_prints_output_and_returns_the_exit_code(make_task: MakeTask, data_dir: Path) -> None:
    make_task(
        "job",
        "args: [--from-yaml]\n",
        script="""
        import os, sys
        print("args", sys.argv[1:], "param", os.environ["TASSE_PARAM_WHO"])
        print("trigger", os.environ["TASSE_TRIGGER"])
        sys.exit(3)
    """,
    )
    result = tasse(data_dir, "run", "job", "--param", "who=Ada", "--", "--extra")
    assert result.returncode == 3
    assert "args ['--from-yaml', '--extra'] param Ada" in result.stdout
    assert "trigger manual" in result.stdout


def test_run_unknown_task_says_so(data_dir: Path) -> None:
    result = tasse(data_dir, "run", "ghost")
    assert result.returncode == 1
    assert "ghost" in result.stderr


def test_validate_lists_each_broken_task_and_fails(make_task: MakeTask, data_dir: Path) -> None:
    make_task("good", "scheduler: {trigger: interval, seconds: 5}\n")
    make_task("typo", "scheduler: {trigger: interval, secondz: 5}\n")
    make_task("late", "scheduler: {trigger: cron, hour: 25}\n")
    (data_dir / "tasks" / "bad name").mkdir()
    result = tasse(data_dir, "validate")
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3
    assert any(
        "'typo'" in line and "scheduler.secondz" in line and "unknown key" in line for line in lines
    )
    assert any("'late'" in line and "scheduler.hour" in line and "25" in line for line in lines)
    assert any("'bad name'" in line for line in lines)
    assert "1 task(s) valid, 3 broken" in result.stderr


def test_validate_passes_on_good_tasks(make_task: MakeTask, data_dir: Path) -> None:
    make_task("good", "scheduler: {trigger: interval, seconds: 5}\n")
    result = tasse(data_dir, "validate")
    assert result.returncode == 0, result.stdout


def test_validate_reports_a_task_no_interpreter_fits(make_task: MakeTask, data_dir: Path) -> None:
    make_task("good", "scheduler: {trigger: interval, seconds: 5}\n")
    make_task("future", 'python: "3.99"\n')
    result = tasse(data_dir, "validate")
    assert result.returncode == 1
    [line] = result.stdout.strip().splitlines()
    assert "'future'" in line
    assert "no interpreter" in line
    assert "3.99" in line
    assert "1 task(s) valid, 1 broken" in result.stderr
    assert not (data_dir / "venvs").exists()  # planned only: nothing was built


def test_validate_build_builds_and_reports_a_failed_build(
    make_task: MakeTask, data_dir: Path
) -> None:
    # A local path that is not there: the installer fails at once, without an index.
    make_task("broken", None, requirements__txt="./no-such-package\n")
    planned_only = tasse(data_dir, "validate")
    assert planned_only.returncode == 0, planned_only.stdout  # not built, so not known bad

    built = tasse(data_dir, "validate", "--build")
    assert built.returncode == 1
    assert "task 'broken': its Python environment failed to build" in built.stdout
    assert "no-such-package" in built.stdout
    assert "0 task(s) valid, 1 broken" in built.stderr

    # The failed build is remembered: without --build, its last attempt counts.
    again = tasse(data_dir, "validate")
    assert again.returncode == 1
    assert "failed to build the last time" in again.stdout
    assert "tasse env broken --rebuild" in again.stdout


def test_list_and_next(make_task: MakeTask, data_dir: Path) -> None:
    make_task("daily", "timezone: Europe/Berlin\nscheduler: {trigger: cron, hour: 6, minute: 30}\n")
    make_task("adhoc", None)
    listing = tasse(data_dir, "list")
    assert listing.returncode == 0
    assert "adhoc" in listing.stdout
    assert "on demand" in listing.stdout
    upcoming = tasse(data_dir, "next", "daily", "--count", "3")
    times = [datetime.fromisoformat(line) for line in upcoming.stdout.split()]
    assert len(times) == 3
    assert all((t.hour, t.minute, t.utcoffset() is not None) == (6, 30, True) for t in times)


def test_bad_setting_is_named(data_dir: Path) -> None:
    result = tasse(data_dir, "serve", "--http-listen-address", "nowhere")
    assert result.returncode == 2
    assert "http_listen_address" in result.stderr
    assert "nowhere" in result.stderr


def test_next_of_a_crontab_line(data_dir: Path) -> None:
    result = tasse(data_dir, "next", "0 9 * * mon", "--timezone", "Europe/Berlin", "--count", "2")
    assert result.returncode == 0, result.stderr
    times = [datetime.fromisoformat(line) for line in result.stdout.split()]
    assert [(t.weekday(), t.hour, t.minute) for t in times] == [(0, 9, 0), (0, 9, 0)]
    bad = tasse(data_dir, "next", "0 25 * * *")
    assert bad.returncode == 1
    assert "hour" in bad.stderr
    assert "25" in bad.stderr


def test_next_of_a_crontab_line_separated_by_tabs(data_dir: Path) -> None:
    result = tasse(data_dir, "next", "0\t0\t*\t*\t*", "--timezone", "UTC", "--count", "2")
    assert result.returncode == 0, result.stderr
    times = [datetime.fromisoformat(line) for line in result.stdout.split()]
    assert [(t.hour, t.minute) for t in times] == [(0, 0), (0, 0)]
    # a no-break space is a blank too, but not one cron takes: refused by name
    refused = tasse(data_dir, "next", "0\u00a00 * * *")
    assert refused.returncode == 1
    assert "U+00A0" in refused.stderr
    assert "not a task name" not in refused.stderr


def test_serve_with_a_bad_store_address_says_so_in_one_line(data_dir: Path) -> None:
    result = tasse(data_dir, "serve", "--store-address", "nosuchdb://x")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "nosuchdb://x" in result.stderr
