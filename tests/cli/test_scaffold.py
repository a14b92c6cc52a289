"""`tasse new NAME`: a task folder that validates and runs as written, never over another."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)


def tasse(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tasse", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_new_writes_a_task_that_validates_and_runs(data_dir: Path) -> None:
    made = tasse(data_dir, "new", "backup", "--schedule", "0 3 * * *", "--description", "nightly")
    assert made.returncode == 0, made.stderr
    folder = data_dir / "tasks" / "backup"
    assert made.stdout.splitlines() == [
        f"wrote {folder / 'task.yaml'}",
        f"wrote {folder / 'task.py'}",
    ]
    assert f"tasse run backup --data-dir {data_dir}" in made.stderr
    assert sorted(path.name for path in folder.iterdir()) == ["task.py", "task.yaml"]

    valid = tasse(data_dir, "validate")
    assert valid.returncode == 0, valid.stdout + valid.stderr
    listed = json.loads(tasse(data_dir, "list", "--json").stdout)
    assert [(t["name"], t["schedules"], t["description"]) for t in listed] == [
        ("backup", ["0 3 * * *"], "nightly")
    ]
    ran = tasse(data_dir, "run", "backup")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("Hello from backup, run ")


def test_new_refuses_to_overwrite_and_refuses_bad_input(data_dir: Path) -> None:
    assert tasse(data_dir, "new", "mine").returncode == 0
    script = data_dir / "tasks" / "mine" / "task.py"
    script.write_text("print('my own work')\n")
    again = tasse(data_dir, "new", "mine", "--schedule", "@daily")
    assert again.returncode == 1
    assert (
        again.stderr == f"tasse: {script.parent} exists already: `tasse new` leaves it as it is\n"
    )
    assert script.read_text() == "print('my own work')\n"

    bad_name = tasse(data_dir, "new", "no/slashes")
    assert bad_name.returncode == 1
    assert "'no/slashes' is not a task name" in bad_name.stderr
    bad_line = tasse(data_dir, "new", "late", "--schedule", "0 25 * * *")
    assert bad_line.returncode == 1
    assert bad_line.stderr.startswith("tasse: --schedule '0 25 * * *': ")
    bad_requirement = tasse(data_dir, "new", "deps", "--requirements", "requests>=,==")
    assert bad_requirement.returncode == 1
    assert "--requirements 'requests>='" in bad_requirement.stderr
    # Nothing half-written is left behind, not even the hidden staging folders.
    assert sorted(p.name for p in (data_dir / "tasks").iterdir()) == ["mine"]


def test_new_with_requirements_writes_them(data_dir: Path) -> None:
    made = tasse(data_dir, "new", "fetch", "--requirements", "requests>=2, rich", "--json")
    assert made.returncode == 0, made.stderr
    folder = data_dir / "tasks" / "fetch"
    assert json.loads(made.stdout)["files"][-1] == str(folder / "requirements.txt")
    assert (folder / "requirements.txt").read_text() == "requests>=2\nrich\n"
