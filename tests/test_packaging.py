"""What ships: the example tasks, `python server.py`, and the Dockerfile's own commands.

No Docker engine runs here, so the Dockerfile's start command and health check are run
directly, with `/data` pointing at a temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.test_api import free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]


def test_example_tasks_are_valid() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tasse", "validate", "--data-dir", str(ROOT / "data")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 task(s) valid, 0 broken" in result.stderr


def _start(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _healthy(port: int) -> bool:
    check = subprocess.run(
        [sys.executable, "-c", _healthcheck_code().replace("4243", str(port))],
        timeout=10,
        check=False,
    )
    return check.returncode == 0


def _dockerfile_json(prefix: str) -> list[str]:
    """The JSON argv of the first Dockerfile line that starts with `prefix`."""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.strip().startswith(prefix):
            argv: list[str] = json.loads(line[line.index("[") :])
            return argv
    raise AssertionError(f"no {prefix!r} line in the Dockerfile")


def _healthcheck_code() -> str:
    argv = _dockerfile_json('CMD ["python"')
    return argv[argv.index("-c") + 1]


def test_server_py_serves_the_data_folder_beside_it(tmp_path: Path) -> None:
    shutil.copy(ROOT / "server.py", tmp_path / "server.py")
    shutil.copytree(ROOT / "data" / "tasks", tmp_path / "data" / "tasks")
    port = free_port()
    server = _start(
        [sys.executable, "server.py", "--http-listen-address", f"127.0.0.1:{port}"],
        tmp_path,
        {"TASSE_DATA_DIR": ""},
    )
    try:
        wait_until(lambda: _healthy(port), timeout=20, every=0.2)
        assert (tmp_path / "data" / "tasse.db").exists()
        wait_until(
            lambda: (tmp_path / "data" / "logs" / "helloworld" / "log.txt").exists(), timeout=15
        )
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0


def test_dockerfile_command_and_healthcheck(tmp_path: Path) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER tasse$", dockerfile, re.MULTILINE)
    assert re.search(r"^VOLUME /data$", dockerfile, re.MULTILINE)
    assert re.search(r"^EXPOSE 4243$", dockerfile, re.MULTILINE)
    command = _dockerfile_json('CMD ["tasse"')
    assert command == [
        "tasse",
        "serve",
        "--data-dir",
        "/data",
        "--http-listen-address",
        "0.0.0.0:4243",
    ]
    port = free_port()
    data = tmp_path / "data"
    argv = [str(Path(sys.executable).parent / "tasse")] + [
        str(data) if arg == "/data" else arg.replace("0.0.0.0:4243", f"127.0.0.1:{port}")
        for arg in command[1:]
    ]
    server = _start(argv, tmp_path, {})
    try:
        wait_until(lambda: _healthy(port), timeout=20, every=0.2)
        assert (data / "tasks").is_dir()
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0
