"""task.yaml mistakes a new user makes, explained: a typo's near key, a tab for indentation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tasse.tasks import discovery
from tasse.tasks.catalog import validate
from tests.conftest import MakeTask
from tests.tasks.test_discovery import assert_names_file, error_of


@pytest.mark.parametrize(
    ("yaml", "key", "hint"),
    [
        ('schedul: "*/5 * * * *"\n', "schedul", "did you mean 'schedule'?"),
        ("schedulr: {trigger: interval, seconds: 10}\n", "schedulr", "did you mean 'scheduler'?"),
        (
            "scheduler: {trigger: interval, secondz: 10}\n",
            "scheduler.secondz",
            "did you mean 'seconds'?",
        ),
        ("schedules: [{trigger: cron, hours: 3}]\n", "schedules.0.hours", "did you mean 'hour'?"),
        (
            "scheduler: {trigger: date, rundate: 2030-01-01}\n",
            "scheduler.rundate",
            "did you mean 'run_date'?",
        ),
        ("timout: 30\n", "timout", "did you mean 'timeout'?"),
    ],
)
def test_an_unknown_key_suggests_the_near_one(
    make_task: MakeTask, yaml: str, key: str, hint: str
) -> None:
    folder = make_task("typo", yaml)

    error = error_of(folder)

    assert_names_file(error, folder, key)
    assert f"unknown key {key.rpartition('.')[2]!r}; {hint}" in str(error)


def test_a_key_near_nothing_gets_no_guess(make_task: MakeTask) -> None:
    error = error_of(make_task("odd", "colour: red\n"))
    assert str(error).endswith("unknown key 'colour'")


def test_a_defined_task_suggests_the_keys_of_definitions() -> None:
    with pytest.raises(ValueError, match=r"unknown key 'comand'; did you mean 'command'\?"):
        validate({"name": "x", "comand": ["true"]}, "x")


@pytest.mark.parametrize(
    ("yaml", "line"),
    [
        ("scheduler:\n\ttrigger: interval\n\tseconds: 10\n", 2),
        ("description: x\nscheduler:\n  trigger: interval\n\tseconds: 10\n", 4),
        ('schedules:\n\t- "*/5 * * * *"\n', 2),
    ],
)
def test_a_tab_for_indentation_is_explained_with_its_line(
    make_task: MakeTask, yaml: str, line: int
) -> None:
    folder = make_task("tabbed", yaml)

    error = error_of(folder)

    assert_names_file(error, folder, None)
    assert (
        f"line {line} is indented with a tab; YAML forbids tabs for indentation, "
        "indent with spaces instead"
    ) in str(error)


def test_a_tab_inside_a_value_is_no_problem(make_task: MakeTask) -> None:
    folder = make_task("tab-value", 'description: "a\tb"\nargs: [x]\n')
    assert discovery.load_or_error(folder).name == "tab-value"  # type: ignore[union-attr]


def test_tasse_validate_prints_the_hints(make_task: MakeTask, data_dir: Path) -> None:
    make_task("typo", "schedul: '* * * * *'\n")
    make_task("tabbed", "scheduler:\n\ttrigger: interval\n")

    result = subprocess.run(
        [sys.executable, "-m", "tasse", "validate", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert "did you mean 'schedule'?" in result.stdout
    assert "line 2 is indented with a tab" in result.stdout
