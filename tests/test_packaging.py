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
import zipfile
from pathlib import Path

import pytest

from tasse.envs.plans import uv_binary
from tasse.store.migrations import HEAD
from tests.http.test_api import wait_until
from tests.ports import free_port

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
    assert "4 task(s) valid, 0 broken" in result.stderr


def _start(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _healthy(port: int) -> bool:
    """The Dockerfile's HEALTHCHECK, run here against a server on `port`."""
    check = subprocess.run(
        [sys.executable if arg == "python" else arg for arg in _dockerfile_json('CMD ["python"')],
        env={**os.environ, "TASSE_HTTP_LISTEN_ADDRESS": f"127.0.0.1:{port}"},
        capture_output=True,
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


def _built_environments(venvs: Path) -> int:
    return sum(p.is_symlink() for p in venvs.iterdir()) if venvs.is_dir() else 0


def _dockerfile_env() -> dict[str, str]:
    """Every `ENV NAME=value` the Dockerfile sets (one per line or continued with `\\`)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    pairs = [line.split(None, 1)[1] for line in text.splitlines() if line.startswith("ENV ")]
    return dict(item.split("=", 1) for pairs_line in pairs for item in pairs_line.split())


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
        wait_until(lambda: _healthy(port), timeout=60, every=0.2)  # a loaded box starts slowly
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
    assert _dockerfile_json("ENTRYPOINT") == ["tini", "--"]
    command = _dockerfile_json('CMD ["tasse"')
    assert command == ["tasse", "serve"]  # the folder and address come from ENV
    port = free_port()
    data = tmp_path / "data"
    argv = [str(Path(sys.executable).parent / "tasse"), *command[1:]]
    # The image's environment, with /data moved: uv's cache lives in the volume.
    image_env = {k: v.replace("/data", str(data)) for k, v in _dockerfile_env().items()}
    assert image_env["UV_CACHE_DIR"] == str(data / ".uv-cache")
    assert image_env["TASSE_HTTP_LISTEN_ADDRESS"] == "0.0.0.0:4243"
    image_env["TASSE_HTTP_LISTEN_ADDRESS"] = f"127.0.0.1:{port}"
    task = data / "tasks" / "needs-six"
    task.mkdir(parents=True)
    (task / "requirements.txt").write_text("six\n")
    (task / "task.py").write_text("import six\n")
    server = _start(argv, tmp_path, image_env)
    try:
        wait_until(lambda: _healthy(port), timeout=60, every=0.2)  # a loaded box starts slowly
        # The task's environment is built in the volume, from a cache in the volume.
        wait_until(lambda: _built_environments(data / "venvs") == 1, timeout=40, every=0.2)
        assert (data / ".uv-cache").is_dir()
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_wheel_ships_every_part_and_the_migrations(tmp_path: Path) -> None:
    """Built as a wheel and installed in a fresh virtualenv, Tasse migrates a new store."""
    source = tmp_path / "source"  # a copy: a build writes into the folder it builds
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "tasse"):
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy(ROOT / name, source / name)
    uv = uv_binary() or "uv"
    subprocess.run(
        [uv, "build", "--quiet", "--wheel", "--out-dir", str(tmp_path / "dist"), str(source)],
        check=True,
        timeout=180,
    )
    (wheel,) = (tmp_path / "dist").glob("tasse-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    for module in sorted(ROOT.glob("tasse/**/*.py")):
        if "__pycache__" not in module.parts:
            assert str(module.relative_to(ROOT)) in shipped
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # uv (installed with Tasse) resolves the wheel's dependencies from its cache or index.
    target = ["--python", str(venv / "bin" / "python")]
    subprocess.run(
        [uv, "pip", "install", "--quiet", *target, str(wheel)],
        check=True,
        timeout=240,
    )
    store = tmp_path / "fresh.db"
    check = subprocess.run(
        [str(venv / "bin" / "python"), "-c", _MIGRATE.format(address=f"sqlite:///{store}")],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the checkout: what runs is the installed package
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.split() == [str(venv), HEAD]
    validate = subprocess.run(
        [str(venv / "bin" / "tasse"), "validate", "--data-dir", str(ROOT / "data")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "4 task(s) valid, 0 broken" in validate.stderr


_MIGRATE = """
import sys, tasse
from tasse.store.runs import RunStore
from tasse.store.migrations import current_revision
store = RunStore({address!r})
print(sys.prefix)
with store.engine.connect() as connection:
    print(current_revision(connection, store.names))
"""
