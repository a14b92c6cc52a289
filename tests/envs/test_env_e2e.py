"""End to end: per-task Python environments, with a real `tasse serve`, the real CLI and real
builds (of `six`, small and pure Python, from the package index this machine is set up with).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tasse.envs.interpreters import on_path, own
from tests.conftest import StartServer
from tests.http.test_api import Server, wait_until

#: a task that shows which `six` it imported and which environment it ran in
SIX_SCRIPT = """
import sys
import six
print("six", six.__version__)
print("prefix", sys.prefix)
"""
#: surely not on any index: its build fails in the resolver, within a second
MISSING = "tasse-e2e-surely-missing-package"
#: builds (a venv and one small wheel) take well under a second here; this is for slow indexes
BUILD_TIMEOUT = 30.0


@pytest.fixture
def server(start_server: StartServer) -> Server:
    return start_server()


def add_task(data_dir: Path, name: str, files: dict[str, str]) -> Path:
    """Write a task folder beside `tasks/`, then move it in whole, as a deploy would."""
    staging = data_dir.parent / "staging" / name
    staging.mkdir(parents=True)
    for filename, content in files.items():
        (staging / filename).write_text(textwrap.dedent(content))
    folder = data_dir / "tasks" / name
    staging.rename(folder)
    return folder


def save(file: Path, content: str) -> None:
    """Save a file the way most editors do: a new file renamed over the old one."""
    draft = file.with_name(file.name + ".new")
    draft.write_text(content)
    os.replace(draft, file)


def rescan(server: Server, *names: str, **headers: str) -> None:
    """POST /rescan (the watcher may have been quicker) and check the tasks loaded cleanly."""
    response = server.http.post("/rescan", headers=headers)
    assert response.status_code == 200, response.text
    for name in names:
        assert server.http.get(f"/tasks/{name}").json()["error"] is None


def env_of(server: Server, name: str) -> dict[str, Any]:
    task: dict[str, Any] = server.http.get(f"/tasks/{name}").json()
    env: dict[str, Any] = task["env"]
    return env


def wait_env(
    server: Server, name: str, status: str, timeout: float = BUILD_TIMEOUT, **where: Any
) -> dict[str, Any]:
    """Wait until the task's env has the `where` values and `status`; fail fast if it failed."""

    def check() -> dict[str, Any] | None:
        if server.http.get(f"/tasks/{name}").status_code != 200:
            return None
        env = env_of(server, name)
        if not all(env[k] == v for k, v in where.items()):
            return None
        if env["status"] == "failed" and status != "failed":
            raise AssertionError(f"env of {name} failed: {env['error']}")
        return env if env["status"] == status else None

    result: dict[str, Any] = wait_until(check, timeout=timeout)
    return result


def run(server: Server, name: str, **headers: str) -> tuple[dict[str, Any], str]:
    """Run the task now and wait for it: its final record and its output."""
    response = server.http.post(f"/tasks/{name}/run", headers=headers)
    assert response.status_code == 202, response.text
    done = server.finished(response.json()["id"])
    return done, server.http.get(f"/runs/{done['id']}/log").text


def printed(log: str, key: str) -> str:
    """The value a task printed as `key value`."""
    found = re.search(rf"^{key} (.+)$", log, re.MULTILINE)
    assert found, f"no {key!r} line in {log!r}"
    return found.group(1)


def installed_six(env_path: str) -> str:
    """The version of six that is really installed in an environment."""
    [dist_info] = Path(env_path).glob("lib/python*/site-packages/six-*.dist-info")
    return dist_info.name.removeprefix("six-").removesuffix(".dist-info")


def tasse(data_dir: Path, command: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, `python -m tasse COMMAND --data-dir DATA ARGS...`."""
    return subprocess.run(
        [sys.executable, "-m", "tasse", command, "--data-dir", str(data_dir), *args],
        cwd=data_dir.parent,  # no stray .env from the repository
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT + 20,
        check=False,
    )


def env_rows(output: str) -> dict[str, str]:
    """`tasse env NAME`'s `key: value` rows."""
    return dict(re.findall(r"^(\w[\w ]*):\s+(.*)$", output, re.MULTILINE))


def test_requirements_env_is_ready_before_any_run_and_the_run_uses_it(server: Server) -> None:
    add_task(server.data_dir, "withsix", {"task.py": SIX_SCRIPT, "requirements.txt": "six\n"})
    rescan(server, "withsix")
    env = wait_env(server, "withsix", "ready")
    # Built ahead of time: nobody ran the task.
    assert server.http.get("/tasks/withsix/runs").json() == []
    assert (env["source"], env["requirements"]) == ("requirements.txt", ["six"])
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in env["python"]
    venvs = server.data_dir / "venvs"
    assert Path(env["path"]).parent == venvs / ".builds"
    assert (venvs / env["hash"]).resolve() == Path(env["path"])
    assert datetime.fromisoformat(env["built_at"])
    assert "six" in (server.data_dir / "logs" / "withsix" / "env.log").read_text()

    done, log = run(server, "withsix")
    assert done["status"] == "succeeded", log
    assert printed(log, "six") == installed_six(env["path"])
    assert printed(log, "prefix") == env["path"]

    shown = tasse(server.data_dir, "env", "withsix")
    assert shown.returncode == 0, shown.stderr
    rows = env_rows(shown.stdout)
    assert rows["status"] == "ready"
    assert (rows["hash"], rows["path"], rows["python"]) == (
        env["hash"],
        env["path"],
        env["python"],
    )


def test_same_requirements_share_one_env_and_a_bare_task_has_only_the_stdlib(
    server: Server,
) -> None:
    add_task(server.data_dir, "alpha", {"task.py": SIX_SCRIPT, "requirements.txt": "six\n"})
    # The same set, spelled differently: still one environment.
    add_task(server.data_dir, "beta", {"task.py": SIX_SCRIPT, "requirements.txt": "Six  # ok\n"})
    bare_script = """
    import json, sys
    print("sum", json.dumps(sum(range(10))))
    print("prefix", sys.prefix, flush=True)
    import fastapi
    """
    add_task(server.data_dir, "plain", {"task.py": bare_script})
    rescan(server, "alpha", "beta", "plain")
    alpha = wait_env(server, "alpha", "ready")
    beta = wait_env(server, "beta", "ready")
    assert (beta["hash"], beta["path"]) == (alpha["hash"], alpha["path"])
    assert len(list((server.data_dir / "venvs" / ".builds").glob(f"{alpha['hash']}-*"))) == 1
    for name in ("alpha", "beta"):
        done, log = run(server, name)
        assert done["status"] == "succeeded", log
        assert printed(log, "prefix") == alpha["path"]

    bare = wait_env(server, "plain", "ready")
    assert (bare["source"], bare["requirements"]) == (None, [])
    assert bare["hash"] != alpha["hash"]
    done, log = run(server, "plain")
    # Tasse's own packages (fastapi, the server's) are not visible to a task.
    assert (done["status"], done["exit_code"]) == ("failed", 1)
    assert "ModuleNotFoundError: No module named 'fastapi'" in log
    assert printed(log, "sum") == "45"
    assert printed(log, "prefix") == bare["path"]


def test_failed_build_refuses_runs_names_the_package_and_heals_when_fixed(
    server: Server,
) -> None:
    data = server.data_dir
    broken = add_task(data, "broken", {"task.py": SIX_SCRIPT, "requirements.txt": f"{MISSING}\n"})
    nightly_script = "open('ran.txt', 'w').write('the code ran')\n"
    nightly = add_task(
        data,
        "nightly",
        {
            "task.py": nightly_script,
            "requirements.txt": f"{MISSING}\n",
            "task.yaml": "scheduler: {trigger: interval, seconds: 1}\n",
        },
    )
    add_task(data, "fine", {"task.py": SIX_SCRIPT, "requirements.txt": "six\n"})
    rescan(server, "broken", "nightly", "fine")

    env = wait_env(server, "broken", "failed")
    assert MISSING in env["error"]
    assert env["path"] is None
    env_log = (data / "logs" / "broken" / "env.log").read_text()
    assert "pip install" in env_log
    assert MISSING in env_log
    # The task's own problem too: no run of it can run its code.
    assert "Python environment failed to build" in server.http.get("/tasks/broken").json()["error"]

    refused = server.http.post("/tasks/broken/run")
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert "Python environment failed to build" in detail
    assert "env.log" in detail
    assert MISSING in detail
    assert server.http.get("/tasks/broken/runs").json() == []

    # A scheduled fire is recorded as failed, with the reason, and the code does not run.
    fires = wait_until(
        lambda: server.http.get("/tasks/nightly/runs", params={"status": "failed"}).json(),
        timeout=10,
    )
    assert fires[0]["trigger"] == "schedule"
    assert "Python environment failed to build" in fires[0]["error"]
    assert not (nightly / "ran.txt").exists()

    shown = tasse(data, "env", "broken")
    assert env_rows(shown.stdout)["status"].startswith("failed")

    done, log = run(server, "fine")
    assert done["status"] == "succeeded", log

    save(broken / "requirements.txt", "six\n")
    healed = wait_env(server, "broken", "ready", timeout=10, requirements=["six"])
    done, log = run(server, "broken")
    assert done["status"] == "succeeded", log
    assert printed(log, "prefix") == healed["path"]
    assert env_of(server, "nightly")["status"] == "failed"  # its file did not change


def test_requirements_edited_in_place_are_picked_up_within_seconds(server: Server) -> None:
    folder = add_task(
        server.data_dir, "inplace", {"task.py": SIX_SCRIPT, "requirements.txt": f"{MISSING}\n"}
    )
    rescan(server, "inplace")
    wait_env(server, "inplace", "failed")
    (folder / "requirements.txt").write_text("six\n")  # `echo six > requirements.txt`
    wait_env(server, "inplace", "ready", timeout=8, requirements=["six"])


def test_editing_one_tasks_requirements_rebuilds_only_its_env(server: Server) -> None:
    one = add_task(server.data_dir, "one", {"task.py": SIX_SCRIPT, "requirements.txt": "six\n"})
    add_task(server.data_dir, "two", {"task.py": SIX_SCRIPT, "requirements.txt": "six>=1\n"})
    rescan(server, "one", "two")
    one_before = wait_env(server, "one", "ready")
    two_before = wait_env(server, "two", "ready")
    assert one_before["hash"] != two_before["hash"]

    save(one / "requirements.txt", "six>=1.10\n")
    one_after = wait_env(server, "one", "ready", timeout=10, requirements=["six>=1.10"])
    assert one_after["hash"] != one_before["hash"]
    assert one_after["path"] != one_before["path"]
    assert env_of(server, "two") == two_before
    assert server.output.read_text().count(f"environment {two_before['hash']}: building") == 1
    done, log = run(server, "one")
    assert done["status"] == "succeeded", log
    assert printed(log, "prefix") == one_after["path"]


@pytest.mark.timeout(90)
def test_a_run_arriving_during_the_build_waits_for_it(start_server: StartServer) -> None:
    # virtualenv + pip: a build of a second or more, long enough to send a run into.
    server = start_server(TASSE_INSTALLER="pip")
    script = SIX_SCRIPT + "import time; time.sleep(0.5)\n"  # long enough to be seen running
    add_task(server.data_dir, "eager", {"task.py": script, "requirements.txt": "six\n"})
    rescan(server, "eager")
    assert env_of(server, "eager")["status"] == "building"
    response = server.http.post("/tasks/eager/run")
    assert response.status_code == 202
    assert response.json()["status"] == "queued"

    run_id = response.json()["id"]
    seen: list[str] = ["queued"]
    deadline = time.monotonic() + BUILD_TIMEOUT
    while seen[-1] in ("queued", "running") and time.monotonic() < deadline:
        status = server.http.get(f"/runs/{run_id}").json()["status"]
        if status != seen[-1]:
            seen.append(status)
        time.sleep(0.02)
    assert seen == ["queued", "running", "succeeded"]

    env = env_of(server, "eager")
    assert env["status"] == "ready"
    assert (Path(env["path"]) / "bin" / "pip").exists()  # pip built it, as asked
    done = server.finished(run_id)
    assert datetime.fromisoformat(done["started_at"]) >= datetime.fromisoformat(env["built_at"])
    log = server.http.get(f"/runs/{run_id}/log").text
    assert printed(log, "six") == installed_six(env["path"])
    task_log = (server.data_dir / "logs" / "eager" / "log.txt").read_text()
    assert "waiting for the task's Python environment" in task_log


def test_rebuild_route_builds_a_fresh_env_and_needs_the_token(start_server: StartServer) -> None:
    server = start_server(TASSE_API_TOKEN="s3cret")
    auth = {"Authorization": "Bearer s3cret"}
    add_task(server.data_dir, "withsix", {"task.py": SIX_SCRIPT, "requirements.txt": "six\n"})
    rescan(server, "withsix", **auth)
    before = wait_env(server, "withsix", "ready")

    refused = server.http.post("/tasks/withsix/env/rebuild")
    assert refused.status_code == 401
    assert server.http.post("/tasks/nope/env/rebuild", headers=auth).status_code == 404
    assert env_of(server, "withsix") == before  # nothing happened

    response = server.http.post("/tasks/withsix/env/rebuild", headers=auth)
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["hash"]) == ("building", before["hash"])
    after = wait_env(server, "withsix", "ready")
    assert after["hash"] == before["hash"]
    assert after["path"] != before["path"]
    assert datetime.fromisoformat(after["built_at"]) > datetime.fromisoformat(before["built_at"])
    assert (server.data_dir / "venvs" / after["hash"]).resolve() == Path(after["path"])
    done, log = run(server, "withsix", **auth)
    assert done["status"] == "succeeded", log
    assert printed(log, "prefix") == after["path"]


def test_cli_run_builds_the_env_and_gc_removes_only_unneeded_ones(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "tasks").mkdir(parents=True)
    add_task(data, "kept", {"task.py": SIX_SCRIPT, "requirements.txt": "six\n"})
    gone = add_task(data, "gone", {"task.py": SIX_SCRIPT, "requirements.txt": "six>=1\n"})
    assert env_rows(tasse(data, "env", "kept").stdout)["status"].startswith("not built")

    first = tasse(data, "run", "kept")
    assert first.returncode == 0, first.stderr
    assert "building the environment of task 'kept'" in first.stderr
    rows = env_rows(tasse(data, "env", "kept").stdout)
    assert rows["status"] == "ready"
    assert printed(first.stdout, "prefix") == rows["path"]
    assert printed(first.stdout, "six") == installed_six(rows["path"])
    again = tasse(data, "run", "kept")
    assert again.returncode == 0, again.stderr
    assert "building" not in again.stderr  # built once, used again

    built = tasse(data, "env", "gone", "--build")
    assert built.returncode == 0, built.stderr
    gone_rows = env_rows(built.stdout)
    assert gone_rows["status"] == "ready"
    # Both were used just now: the default age keeps even the one about to lose its folder.
    shutil.rmtree(gone)
    lenient = tasse(data, "env", "gc")
    assert lenient.returncode == 0, lenient.stderr
    assert lenient.stdout == ""
    assert Path(gone_rows["path"]).is_dir()

    strict = tasse(data, "env", "gc", "--max-age-days", "0")
    assert strict.returncode == 0, strict.stderr
    assert strict.stdout == f"removed {data / 'venvs' / gone_rows['hash']}\n"
    assert not Path(gone_rows["path"]).exists()
    assert not (data / "venvs" / gone_rows["hash"]).is_symlink()
    assert Path(rows["path"]).is_dir()
    assert env_rows(tasse(data, "env", "kept").stdout)["path"] == rows["path"]


def test_pep723_script_gets_its_env_and_a_missing_python_fails_alone(server: Server) -> None:
    if any(i.version.release[:2] == (3, 12) for i in (own(), *on_path())):
        pytest.skip("this machine has a Python 3.12; the test needs a version it lacks")
    inline = '# /// script\n# dependencies = ["six"]\n# ///\n'
    add_task(server.data_dir, "inline", {"task.py": inline + SIX_SCRIPT})
    py312 = add_task(
        server.data_dir,
        "py312",
        {
            "task.py": "open('ran.txt', 'w').write('the code ran')\n",
            "task.yaml": 'python: "3.12"\nscheduler: {trigger: interval, seconds: 1}\n',
        },
    )
    rescan(server, "inline")
    assert "3.12" in server.http.get("/tasks/py312").json()["error"]  # no Python: a problem

    env = wait_env(server, "inline", "ready")
    assert (env["source"], env["requirements"]) == ("task.py", ["six"])
    done, log = run(server, "inline")
    assert done["status"] == "succeeded", log
    assert printed(log, "six") == installed_six(env["path"])
    assert printed(log, "prefix") == env["path"]

    failed = env_of(server, "py312")
    assert failed["status"] == "failed"
    assert "`python:` in task.yaml '==3.12.*'" in failed["error"]
    assert "Tasse never downloads one" in failed["error"]
    refused = server.http.post("/tasks/py312/run")
    assert refused.status_code == 409
    assert "3.12" in refused.json()["detail"]
    fires = wait_until(
        lambda: server.http.get("/tasks/py312/runs", params={"status": "failed"}).json(),
        timeout=10,
    )
    assert "3.12" in fires[0]["error"]
    assert not (py312 / "ran.txt").exists()

    assert server.http.get("/health").json()["tasks"] == 2
    done, _ = run(server, "inline")
    assert done["status"] == "succeeded"
