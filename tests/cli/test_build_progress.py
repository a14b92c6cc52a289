"""`tasse env NAME --build` (and `tasse run`, which builds the same way) shows the installer's
output line by line while the build goes on, not one "building…" line and a long wait."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import MakeTask
from tests.envs.test_environments import BUILD_TIME, SLOW, SlowPackage, write_wheel
from tests.http.test_api import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_env_build_shows_the_installers_lines_as_they_come(
    make_task: MakeTask, data_dir: Path, tmp_path: Path
) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    write_wheel(wheels, SLOW, "1.0")
    package = SlowPackage(make_task("slow"), wheels)
    command = [sys.executable, "-m", "tasse", "env", "slow", "--build"]
    with subprocess.Popen(
        [*command, "--data-dir", str(data_dir), "--find-links", str(wheels)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "UV_OFFLINE": "1", "PIP_NO_INDEX": "1"},
    ) as builder:
        lines, shown, code = _watch(builder, package)
        assert builder.stdout is not None
        report = builder.stdout.read()
    assert code == 0, "".join(lines)
    assert shown[0].startswith("tasse: building the environment of task 'slow'")
    assert any(line.startswith("  | # ") and "building" in line for line in shown)
    assert len(lines) > len(shown)  # the rest of the installer's output followed
    assert "status:       ready" in report


def _watch(
    builder: subprocess.Popen[str], package: SlowPackage
) -> tuple[list[str], list[str], int]:
    """All of stderr, what of it had come while the build was held, and the exit code."""
    lines: list[str] = []
    assert builder.stderr is not None
    stderr = builder.stderr
    reader = threading.Thread(target=lambda: lines.extend(iter(stderr.readline, "")))
    reader.start()
    try:
        package.wait_started()  # the installer is stuck building the slow package: mid-build
        wait_until(lambda: any(line.startswith("  | $ ") for line in lines), timeout=10)
        shown = list(lines)
        assert builder.poll() is None
    finally:
        package.release()
        code = builder.wait(timeout=BUILD_TIME)
        reader.join()
    return lines, shown, code
