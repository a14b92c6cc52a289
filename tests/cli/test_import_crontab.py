"""`tasse import crontab` as someone leaving cron types it: real crontabs in, task folders out,
loaded by discovery and run by `tasse run`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tasse.tasks.crontab_files import USER_VARIABLE
from tasse.tasks.discovery import load_task
from tests.tasks.test_crontab_files import DEBIAN_ETC_CRONTAB


def tasse(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tasse", *args, "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_debians_etc_crontab_becomes_four_task_folders(data_dir: Path) -> None:
    result = tasse(data_dir, "import", "crontab", str(DEBIAN_ETC_CRONTAB))
    assert result.returncode == 0, result.stderr
    assert "wrote 4 task folder(s)" in result.stderr
    folders = sorted(p.name for p in (data_dir / "tasks").iterdir())
    assert folders == [
        "anacron-run-parts-cron.daily-8b4c48",
        "anacron-run-parts-cron.monthly-fd70d2",
        "anacron-run-parts-cron.weekly-aa8d08",
        "run-parts-cron.hourly-4b500c",
    ]
    hourly = load_task(data_dir / "tasks" / "run-parts-cron.hourly-4b500c")
    assert hourly.spec.schedule == "17 * * * *"
    assert hourly.command == ("bash", "task.sh")
    assert hourly.spec.env["SHELL"] == "/bin/sh"
    assert hourly.spec.env[USER_VARIABLE] == "root"
    script = (hourly.folder / "task.sh").read_text()
    assert script.splitlines()[-1] == "cd / && run-parts --report /etc/cron.hourly"
    assert "Tasse runs it as its own user" in script
    assert tasse(data_dir, "validate").returncode == 0


def test_a_crontab_from_stdin_runs_with_its_percent_input(data_dir: Path) -> None:
    crontab = (
        'WHO=cron\n# Greets.\n# tasse: name=greet\n*/5 * * * * echo "hi $WHO"; cat %a%50\\% b\n'
    )
    result = tasse(data_dir, "import", "crontab", "-", stdin=crontab)
    assert result.returncode == 0, result.stderr
    task = load_task(data_dir / "tasks" / "greet")
    assert (task.spec.schedule, task.spec.stdin, task.spec.env) == (
        "*/5 * * * *",
        "a\n50% b\n",
        {"WHO": "cron"},
    )
    assert task.spec.description == "Greets."
    ran = tasse(data_dir, "run", "greet")
    assert (ran.returncode, ran.stdout) == (0, "hi cron\na\n50% b\n")


def test_dry_run_shows_and_writes_nothing_and_existing_folders_need_force(
    data_dir: Path, tmp_path: Path
) -> None:
    crontab = tmp_path / "jobs.cron"
    crontab.write_text("# tasse: name=tick\n@hourly echo one\n")
    shown = tasse(data_dir, "import", "crontab", str(crontab), "--dry-run")
    assert shown.returncode == 0
    assert f"{data_dir / 'tasks' / 'tick'}/" in shown.stdout
    assert "schedule: '@hourly'" in shown.stdout
    assert "echo one" in shown.stdout
    assert not (data_dir / "tasks" / "tick").exists()

    assert tasse(data_dir, "import", "crontab", str(crontab)).returncode == 0
    crontab.write_text("# tasse: name=tick\n@daily echo two\n")
    refused = tasse(data_dir, "import", "crontab", str(crontab))
    assert refused.returncode == 1
    assert "task folders exist already: tick (--force replaces)" in refused.stderr
    assert "echo one" in (data_dir / "tasks" / "tick" / "task.sh").read_text()

    forced = tasse(data_dir, "import", "crontab", str(crontab), "--force")
    assert forced.returncode == 0, forced.stderr
    assert load_task(data_dir / "tasks" / "tick").spec.schedule == "@daily"


def test_bad_lines_are_named_and_the_good_ones_imported(data_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "tasks"
    result = tasse(
        data_dir,
        "import",
        "crontab",
        "-",
        "--system",
        "--tasks-dir",
        str(other),
        stdin="0 0 * * * root echo ok\n0 0 * * 8 root echo bad\n",
    )
    assert result.returncode == 1
    assert "tasse: <stdin>: line 2: field day_of_week: 8" in result.stderr
    written = [folder.name for folder in other.iterdir()]
    assert len(written) == 1
    assert written[0].startswith("echo-ok-")
    assert not (data_dir / "tasks").exists() or not any((data_dir / "tasks").iterdir())
