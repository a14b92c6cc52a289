"""The image's init, health check and drivers, run here as the Dockerfile runs them.

No Docker engine runs here. The start command runs under `tini` as PID 1 of a PID
namespace of its own (`unshare --pid`), as in a container, where orphans of task
processes are re-parented to it; without an init they stay zombies under the server.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement

from tests.http.test_api import wait_until
from tests.ports import free_port
from tests.test_packaging import ROOT, _dockerfile_env, _dockerfile_json, _healthy

#: a task whose run leaves three orphans behind, each ending a moment later
ORPHANS = "for n in 1 2 3; do (sleep 0.3 &) ; done\necho left three\n"


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _zombies_under(pid: int) -> list[int]:
    zombies = []
    for child in _children(pid):
        try:
            state = Path(f"/proc/{child}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state == "Z":
            zombies.append(child)
    return zombies


def _in_a_pid_namespace(
    init: list[str], data: Path, port: int, output: Path
) -> subprocess.Popen[bytes]:
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], check=False)
    if probe.returncode != 0:
        pytest.skip("no PID namespace here (unshare --pid needs CAP_SYS_ADMIN)")
    env = {k: v.replace("/data", str(data)) for k, v in _dockerfile_env().items()}
    env["TASSE_HTTP_LISTEN_ADDRESS"] = f"127.0.0.1:{port}"
    command = [str(Path(sys.executable).parent / "tasse"), *_dockerfile_json('CMD ["tasse"')[1:]]
    with output.open("wb") as errors:  # the child keeps its own copy
        return subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", *init, *command],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )


def _zombies_after_a_run(tmp_path: Path, init: list[str]) -> tuple[list[int], int]:
    """Serve in a PID namespace, run the orphaning task, count zombies under PID 1; stop."""
    data = tmp_path / "data"
    (data / "tasks" / "orphans").mkdir(parents=True)
    (data / "tasks" / "orphans" / "task.sh").write_text(ORPHANS)
    port = free_port()
    output = tmp_path / "server.log"
    outer = _in_a_pid_namespace(init, data, port, output)
    try:
        wait_until(lambda: _healthy(port), timeout=60, every=0.2)
        (first,) = wait_until(lambda: _children(outer.pid), timeout=10)  # PID 1 inside
        log = data / "logs" / "orphans" / "log.txt"

        posted = httpx.post(f"http://127.0.0.1:{port}/tasks/orphans/run")
        assert posted.status_code == 202, (posted.text, output.read_text())
        wait_until(lambda: log.exists() and "left three" in log.read_text(), timeout=20)
        time.sleep(1.0)  # the orphans have ended by now
        zombies = _zombies_under(first)
        os.kill(first, signal.SIGTERM)  # what `docker stop` sends to PID 1
        return zombies, outer.wait(timeout=30)
    finally:
        if outer.poll() is None:
            outer.kill()
            outer.wait()


def test_tini_as_pid_1_reaps_what_tasks_leave_and_passes_sigterm_on(tmp_path: Path) -> None:
    entrypoint = _dockerfile_json("ENTRYPOINT")
    assert entrypoint[0] == "tini"
    if shutil.which("tini") is None:
        pytest.skip("no tini here (apt-get install tini: the image installs it so)")

    zombies, code = _zombies_after_a_run(tmp_path, entrypoint)

    assert zombies == []
    assert code == 0  # tini passed SIGTERM on; the server stopped cleanly


def test_without_an_init_the_orphans_stay_zombies(tmp_path: Path) -> None:
    # What the image's init is for: the server as PID 1 does not reap strangers.
    zombies, _ = _zombies_after_a_run(tmp_path, [])

    assert len(zombies) == 3


def test_the_image_installs_tini_with_apt() -> None:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    installs = [line for line in text.splitlines() if "apt-get install" in line]
    assert any(" tini" in line for line in installs), installs


def test_the_health_check_follows_the_configured_port(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "tasks").mkdir(parents=True)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tasse", "serve"],
        env={
            **os.environ,
            "TASSE_DATA_DIR": str(data),
            "TASSE_HTTP_LISTEN_ADDRESS": f"0.0.0.0:{port}",  # as `docker run -e` gives it
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _healthy(port), timeout=60, every=0.2)
        check = subprocess.run(
            [sys.executable if a == "python" else a for a in _dockerfile_json('CMD ["python"')],
            env={**os.environ, "TASSE_HTTP_LISTEN_ADDRESS": f"0.0.0.0:{port + 1}"},
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert check.returncode == 1
        assert check.stderr.startswith("tasse: not healthy: ")
        assert f":{port + 1}" in check.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0


def test_the_image_has_the_postgresql_and_mariadb_drivers() -> None:
    text = (ROOT / "Dockerfile").read_text()
    (install,) = [line for line in text.splitlines() if "pip install" in line]
    extras = install.partition("[")[2].partition("]")[0].split(",")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    packages = {
        Requirement(r).name for extra in extras for r in project["optional-dependencies"][extra]
    }
    assert {"psycopg", "pymysql"} <= packages
    for package in ("psycopg", "pymysql"):  # and they are what this checkout runs with
        assert importlib.metadata.version(package)
