"""`--help` shows examples that parse; `tasse env --gc` never takes a task named gc for it."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from tasse.cli.main import _parser, main
from tests.envs.test_env_e2e import tasse


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--help"])
    assert stopped.value.code == 0
    return capsys.readouterr().out


def _example_lines(text: str) -> list[str]:
    examples = text.partition("\nexamples:\n")[2]
    assert examples, text
    return [line.strip() for line in examples.splitlines() if line.startswith("  tasse ")]


def _commands() -> list[str]:
    found = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(found[0].choices)


@pytest.mark.parametrize("argv", [(), *((name,) for name in _commands())])
def test_help_ends_with_examples_that_parse(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    text = _help(capsys, *argv)

    lines = _example_lines(text)
    assert len(lines) >= 1
    for line in lines:
        # The command without its comment (two spaces or more), as main() splits it.
        # ... and before a pipe into another program
        words = shlex.split(re.split(r"\s{2,}| \| ", line)[0])[1:]
        words = words[: words.index("--")] if "--" in words else words
        assert _parser().parse_args(words).command == (argv[0] if argv else words[0]), line


def test_every_command_has_examples_once(capsys: pytest.CaptureFixture[str]) -> None:
    listed = _help(capsys).partition("{")[2].partition("}")[0].split(",")
    assert set(listed) == set(_commands())
    for name in listed:
        assert _help(capsys, name).count("examples:") == 1, name


def test_the_examples_keep_their_lines(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys, "env")
    assert "\n  tasse env --gc                   remove environments" in text


def _folder_task(data: Path, name: str) -> None:
    folder = data / "tasks" / name
    folder.mkdir(parents=True)
    (folder / "task.py").write_text("print('hi')\n")


def test_a_task_named_gc_is_shown_and_gc_is_asked_with_a_flag(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _folder_task(data, "gc")
    stray = data / "venvs" / "0123456789abcdef"
    stray.mkdir(parents=True)

    shown = tasse(data, "env", "gc")
    assert shown.returncode == 0, shown.stderr
    assert "status:" in shown.stdout
    assert "hash:" in shown.stdout
    assert stray.is_dir()  # showing gc's environment collected nothing

    collected = tasse(data, "env", "--gc", "--max-age-days", "0")
    assert collected.returncode == 0, collected.stderr
    assert "environment(s) removed" in collected.stderr


def test_env_gc_without_a_task_of_that_name_still_collects(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _folder_task(data, "other")

    collected = tasse(data, "env", "gc")

    assert collected.returncode == 0, collected.stderr
    assert "0 environment(s) removed" in collected.stderr


def test_env_needs_a_name_or_gc(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "tasks").mkdir(parents=True)

    assert "give a task name, or --gc" in tasse(data, "env").stderr
    both = tasse(data, "env", "other", "--gc")
    assert both.returncode == 1
    assert "--gc takes no task name" in both.stderr
