"""Task environments, really built: uv (and virtualenv + pip), offline wheels, crashes, sharing, GC.

The wheels are written here by hand (a wheel is a zip with three metadata files), so most
builds need no network; the registry tests use `six`, small and pure Python.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import signal
import subprocess
import textwrap
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tasse.envs.environments import EnvCache, Environment
from tasse.envs.installer import EnvBuildError, installer_environment
from tasse.envs.interpreters import NoInterpreterError, on_path, own
from tasse.envs.plans import EnvPlan, Installer, pick_installer, plan
from tasse.tasks import discovery
from tests.conftest import MakeTask

PROBE = "tasse-probe"  # a name no registry has: it can only come from our wheels
SLOW = "tasse-slow"
#: time a real build may take on a loaded 2-core machine
BUILD_TIME = 30.0


# -- real wheels and a real slow build ---------------------------------------------------------


def write_wheel(directory: Path, name: str, version: str) -> Path:
    """A minimal valid pure-Python wheel whose module knows its version."""
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tasse-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = [f"{path},sha256={_digest(data)},{len(data)}" for path, data in files.items()]
    record.append(f"{info}/RECORD,,")
    wheel = directory / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


SLOW_BACKEND = """\
    # A PEP 517 backend that holds its build while the gate file exists (or its parent, the
    # installer, lives), so a test can act on a build that is really under way.
    import os, shutil, time

    def get_requires_for_build_wheel(config_settings=None):
        return []

    def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
        with open({started!r}, "a") as started:
            started.write(f"{{os.getpid()}}\\n")
        parent, deadline = os.getppid(), time.monotonic() + 20
        while os.path.exists({gate!r}) and os.getppid() == parent:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        shutil.copy({wheel!r}, wheel_directory)
        return os.path.basename({wheel!r})
"""


class SlowPackage:
    """`./slowpkg` in a task folder: its build waits for `release()`."""

    def __init__(self, folder: Path, wheels: Path):
        self.folder = folder
        self.gate = folder.parent / f".{folder.name}-gate"
        self.started = folder.parent / f".{folder.name}-started"
        self.gate.touch()
        wheel = wheels / f"{SLOW.replace('-', '_')}-1.0-py3-none-any.whl"
        source = folder / "slowpkg"
        source.mkdir()
        (source / "pyproject.toml").write_text(
            textwrap.dedent(f"""
                [build-system]
                requires = []
                build-backend = "slow_backend"
                backend-path = ["."]

                [project]
                name = "{SLOW}"
                version = "1.0"
            """)
        )
        backend = SLOW_BACKEND.format(
            started=str(self.started), gate=str(self.gate), wheel=str(wheel)
        )
        (source / "slow_backend.py").write_text(textwrap.dedent(backend))
        (folder / "requirements.txt").write_text("./slowpkg\n")

    def wait_started(self, timeout: float = BUILD_TIME) -> None:
        wait_until(self.started.exists, timeout, "the slow package's build to start")

    def builds(self) -> int:
        """How many times its backend was asked for a wheel."""
        return len(self.started.read_text().splitlines()) if self.started.exists() else 0

    def release(self) -> None:
        self.gate.unlink(missing_ok=True)

    @contextlib.contextmanager
    def threads(self, count: int = 1) -> Iterator[ThreadPoolExecutor]:
        """Threads to build in; leaving releases the build, so a failed test never hangs."""
        pool = ThreadPoolExecutor(count)
        try:
            yield pool
        finally:
            self.release()
            pool.shutdown(wait=True)


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def cache(data_dir: Path) -> Iterator[EnvCache]:
    environments = EnvCache(data_dir / "venvs")
    yield environments
    environments.stop()


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    """A find-links folder: tasse-probe 1.0 and 2.0, and the wheel the slow package yields."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    write_wheel(folder, PROBE, "1.0")
    write_wheel(folder, PROBE, "2.0")
    write_wheel(folder, SLOW, "1.0")
    return folder


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's environment says: no network, no index (in uv's and pip's words)."""
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("PIP_NO_INDEX", "1")


@pytest.fixture
def slow(make_task: MakeTask, wheels: Path) -> Iterator[SlowPackage]:
    package = SlowPackage(make_task("slow"), wheels)
    yield package
    package.release()  # a backend still waiting ends now


def planned(folder: Path, installer: Installer = "uv") -> EnvPlan:
    """The plan for a task folder as Tasse makes it."""
    task = discovery.load_task(folder)
    assert task.dependencies is not None
    return plan(task, task.dependencies, installer)


def python(environment: Environment, code: str) -> subprocess.CompletedProcess[str]:
    """Run code with the environment's interpreter, activated as a task run is."""
    return subprocess.run(
        ["python", "-c", code],
        cwd=environment.path,  # not this checkout, whose `tasse` folder `-c` would import
        env=environment.activate(os.environ),
        capture_output=True,
        text=True,
        timeout=BUILD_TIME,
        check=False,
    )


def imported_version(environment: Environment, module: str) -> str:
    result = python(environment, f"import {module}; print({module}.VERSION)")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def build_dirs(cache: EnvCache) -> list[Path]:
    return sorted(path for path in cache.builds.iterdir() if path.is_dir())


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.02)


def installer_processes(cache: EnvCache, digest: str) -> list[int]:
    """Children of this process whose command line names a build directory of `digest`."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
            parent = int(Path(entry.path, "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        mine = parent == os.getpid()
        if mine and any(str(cache.builds / f"{digest}-").encode() in arg for arg in argv):
            found.append(int(entry.name))
    return found


def assert_nothing_published(cache: EnvCache, digest: str) -> None:
    assert cache.find(digest) is None
    assert not os.path.lexists(cache.root / digest)
    assert build_dirs(cache) == []


# -- building with uv --------------------------------------------------------------------------


def test_a_registry_package_is_built_once_and_found_again(
    make_task: MakeTask, cache: EnvCache
) -> None:
    the_plan = planned(make_task("report", requirements__txt="six\n"))

    environment = cache.build(the_plan)

    result = python(environment, "import six, sys; print(six.__file__); print(sys.prefix)")
    assert result.returncode == 0, result.stderr
    module_file, prefix = result.stdout.split()
    assert Path(module_file).is_relative_to(environment.path)
    assert Path(prefix) == environment.path
    assert cache.find(the_plan.hash) == environment
    assert environment.path.parent == cache.builds
    assert os.path.realpath(cache.root / the_plan.hash) == str(environment.path)
    # A second build is a lookup: same environment, no second build directory.
    assert cache.build(the_plan) == environment
    assert build_dirs(cache) == [environment.path]


@pytest.mark.usefixtures("offline")
@pytest.mark.timeout(180)
@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_offline_a_find_links_folder_is_enough(
    make_task: MakeTask, data_dir: Path, wheels: Path, installer: Installer
) -> None:
    the_plan = planned(make_task("offline", requirements__txt=f"{PROBE}<2\n"), installer)
    cache = EnvCache(data_dir / "venvs", find_links=str(wheels))

    environment = cache.build(the_plan)

    assert imported_version(environment, "tasse_probe") == "1.0"
    # The tool that made it is the one asked for.
    config = (environment.path / "pyvenv.cfg").read_text()
    assert ("virtualenv = " in config) == (installer == "pip")
    assert ("uv = " in config) == (installer == "uv")


@pytest.mark.usefixtures("offline")
def test_the_servers_pip_find_links_reaches_uv(
    make_task: MakeTask, cache: EnvCache, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # uv reads no PIP_* variable: Tasse passes the index settings on in uv's spelling.
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.delenv("UV_FIND_LINKS", raising=False)
    the_plan = planned(make_task("linked", requirements__txt=f"{PROBE}\n"))

    assert imported_version(cache.build(the_plan), "tasse_probe") == "2.0"


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize(
    "files",
    [
        {"requirements.txt": "-r other.txt\n", "other.txt": "./wheels/{wheel}\n"},
        {"requirements.txt": "./wheels/{wheel}\n"},
    ],
    ids=["requirement-file", "wheel-path"],
)
def test_paths_in_requirements_are_the_task_folders(
    make_task: MakeTask, cache: EnvCache, files: dict[str, str]
) -> None:
    folder = make_task("local")
    (folder / "wheels").mkdir()
    wheel = write_wheel(folder / "wheels", PROBE, "1.5")
    for name, text in files.items():
        (folder / name).write_text(text.format(wheel=wheel.name))
    the_plan = planned(folder)
    assert the_plan.dependencies.local

    assert imported_version(cache.build(the_plan), "tasse_probe") == "1.5"


@pytest.mark.usefixtures("offline")
def test_a_poetry_lock_decides_the_installed_version(
    make_task: MakeTask, data_dir: Path, wheels: Path
) -> None:
    pyproject = f'[tool.poetry.dependencies]\npython = ">=3.11"\n{PROBE} = ">=1.0"\n'
    lock = f"""
        [[package]]
        name = "{PROBE}"
        version = "1.0"
        optional = false
        python-versions = "*"
        groups = ["main"]
        files = []

        [metadata]
        lock-version = "2.1"
        python-versions = ">=3.11"
        content-hash = "0000"
    """
    unlocked = make_task("unlocked", pyproject__toml=pyproject)
    locked = make_task("locked", pyproject__toml=pyproject, poetry__lock=lock)
    cache = EnvCache(data_dir / "venvs", find_links=str(wheels))

    assert imported_version(cache.build(planned(unlocked)), "tasse_probe") == "2.0"
    assert imported_version(cache.build(planned(locked)), "tasse_probe") == "1.0"


def test_equivalent_requirements_share_one_environment(
    make_task: MakeTask, cache: EnvCache
) -> None:
    first = planned(make_task("first", requirements__txt="six\n"))
    second = planned(make_task("second", requirements__txt="# same thing\nSix  # as first\n"))

    assert first.hash == second.hash
    assert cache.build(first) == cache.build(second)
    assert len(build_dirs(cache)) == 1


def test_the_same_requirements_with_another_installer_are_another_environment(
    make_task: MakeTask,
) -> None:
    folder = make_task("either", requirements__txt="six\n")

    assert planned(folder, "uv").hash != planned(folder, "pip").hash


def test_a_bare_environment_sees_the_stdlib_but_not_tasses_packages(
    make_task: MakeTask, cache: EnvCache
) -> None:
    import fastapi  # noqa: F401  (Tasse's own dependency: importable right here)

    environment = cache.build(planned(make_task("bare")))

    stdlib = python(environment, "import json, sqlite3, ssl, zoneinfo; print('ok')")
    assert stdlib.returncode == 0, stdlib.stderr
    assert stdlib.stdout.strip() == "ok"
    for module in ("fastapi", "tasse", "six"):
        leaked = python(environment, f"import {module}")
        assert leaked.returncode != 0, f"{module} is importable in a bare environment"
        assert "ModuleNotFoundError" in leaked.stderr


# -- failures ----------------------------------------------------------------------------------


def test_a_missing_package_fails_with_the_installers_words_and_leaves_nothing(
    make_task: MakeTask, cache: EnvCache
) -> None:
    missing = "tasse-test-no-such-package-4f1c"
    folder = make_task("typo", requirements__txt=f"six\n{missing}\n")
    broken = planned(folder)

    with pytest.raises(EnvBuildError) as caught:
        cache.build(broken)

    message = str(caught.value)
    assert "uv pip install exited with code 1" in message
    # uv wraps its words at the terminal's width: a longer path moves the line breaks
    assert f"Because {missing} was not found in the package registry" in " ".join(message.split())
    assert_nothing_published(cache, broken.hash)
    assert missing in cache.log_file(broken.hash).read_text()

    (folder / "requirements.txt").write_text("six\n")
    fixed = planned(folder)
    assert python(cache.build(fixed), "import six").returncode == 0
    assert cache.find(broken.hash) is None


@pytest.mark.usefixtures("offline")
def test_a_killed_installer_fails_the_build_and_publishes_nothing(
    cache: EnvCache, slow: SlowPackage
) -> None:
    the_plan = planned(slow.folder)
    with slow.threads() as pool:
        building = pool.submit(cache.build, the_plan)
        slow.wait_started()
        # Under way: nothing is published yet, and garbage collection leaves it alone.
        assert cache.find(the_plan.hash) is None
        (under_way,) = build_dirs(cache)
        cache.collect_garbage(set(), max_age=0, leftovers_age=0)
        assert under_way.is_dir()

        installers = installer_processes(cache, the_plan.hash)
        assert installers, "no installer process found for the build"
        for pid in installers:
            os.kill(pid, signal.SIGKILL)

        error = building.exception(timeout=BUILD_TIME)

    assert isinstance(error, EnvBuildError)
    assert f"killed by signal {signal.SIGKILL.value}" in str(error)
    assert_nothing_published(cache, the_plan.hash)

    environment = cache.build(the_plan)  # released now: its build no longer waits
    assert cache.find(the_plan.hash) == environment
    assert imported_version(environment, "tasse_slow") == "1.0"


@pytest.mark.usefixtures("offline")
def test_a_build_over_its_timeout_is_stopped(data_dir: Path, slow: SlowPackage) -> None:
    cache = EnvCache(data_dir / "venvs", timeout=1.0)
    the_plan = planned(slow.folder)

    started = time.monotonic()
    with pytest.raises(EnvBuildError, match="took longer than 1 s and was stopped"):
        cache.build(the_plan)

    assert time.monotonic() - started < BUILD_TIME
    assert_nothing_published(cache, the_plan.hash)


@pytest.mark.usefixtures("offline")
def test_stopping_the_cache_kills_its_builds_and_starts_no_more(
    cache: EnvCache, slow: SlowPackage
) -> None:
    the_plan = planned(slow.folder)
    with slow.threads() as pool:
        building = pool.submit(cache.build, the_plan)
        slow.wait_started()

        cache.stop()

        error = building.exception(timeout=BUILD_TIME)
    assert isinstance(error, EnvBuildError)
    assert "killed by signal" in str(error)
    assert installer_processes(cache, the_plan.hash) == []
    assert_nothing_published(cache, the_plan.hash)

    with pytest.raises(EnvBuildError):
        cache.build(the_plan)
    assert_nothing_published(cache, the_plan.hash)


def test_a_half_build_left_by_a_crash_is_never_used_and_is_collected(
    make_task: MakeTask, cache: EnvCache
) -> None:
    the_plan = planned(make_task("crashed"))
    # What a server killed mid-build leaves: a build directory that was never linked.
    half = cache.builds / f"{the_plan.hash}-{time.time_ns()}"
    (half / "bin").mkdir(parents=True)
    (half / "tasse-env.json").write_text('{"built_at": "2024-01-01T00:00:00+00:00"}')

    assert cache.find(the_plan.hash) is None
    environment = cache.build(the_plan)
    assert environment.path != half

    # A fresh leftover may still be in use by a run: only an old enough one goes.
    cache.collect_garbage(set(), max_age=3600, leftovers_age=3600)
    assert half.is_dir()
    assert cache.collect_garbage(set(), max_age=3600, leftovers_age=0) == []
    assert not half.exists()
    assert build_dirs(cache) == [environment.path]
    assert cache.find(the_plan.hash) == environment


# -- concurrency -------------------------------------------------------------------------------


@pytest.mark.usefixtures("offline")
def test_concurrent_builds_of_one_hash_build_once(data_dir: Path, slow: SlowPackage) -> None:
    # Two caches on one folder: the server and a `tasse run` in a shell, say.
    server, shell = EnvCache(data_dir / "venvs"), EnvCache(data_dir / "venvs")
    the_plan = planned(slow.folder)
    with slow.threads(2) as pool:
        first: Future[Environment] = pool.submit(server.build, the_plan)
        slow.wait_started()
        second: Future[Environment] = pool.submit(shell.build, the_plan)
        time.sleep(0.3)  # the second one is now waiting for the first
        assert not second.done()

        slow.release()

        assert first.result(BUILD_TIME) == second.result(BUILD_TIME)
    assert slow.builds() == 1
    assert build_dirs(server) == [first.result().path]


# -- garbage collection ------------------------------------------------------------------------


@pytest.mark.usefixtures("offline")
def test_garbage_collection_removes_only_old_unneeded_environments(
    make_task: MakeTask, data_dir: Path, wheels: Path
) -> None:
    cache = EnvCache(data_dir / "venvs", find_links=str(wheels))
    old = cache.build(planned(make_task("old", requirements__txt=f"{PROBE}==1.0\n")))
    needed = cache.build(planned(make_task("needed", requirements__txt=f"{PROBE}==2.0\n")))
    used = cache.build(planned(make_task("used")))
    two_days_ago = time.time() - 2 * 86400
    for environment in (old, needed, used):
        os.utime(cache.root / environment.hash, (two_days_ago,) * 2, follow_symlinks=False)
    cache.touch(used.hash)  # a run just used it

    removed = cache.collect_garbage({needed.hash}, max_age=86400, leftovers_age=3600)

    assert removed == [old.hash]
    assert cache.find(old.hash) is None
    assert not os.path.lexists(cache.root / old.hash)
    assert not old.path.exists()
    for kept in (needed, used):
        assert cache.find(kept.hash) == kept
        assert python(kept, "print(1)").returncode == 0
    assert build_dirs(cache) == sorted([needed.path, used.path])


def test_a_forced_rebuild_replaces_the_environment_and_the_old_build_is_collected(
    make_task: MakeTask, cache: EnvCache
) -> None:
    the_plan = planned(make_task("rebuilt"))
    before = cache.build(the_plan)

    after = cache.build(the_plan, force=True)

    assert after.path != before.path
    assert after.built_at > before.built_at
    assert cache.find(the_plan.hash) == after
    assert before.path.is_dir()  # a run started before the rebuild may still use it
    assert cache.collect_garbage(set(), max_age=3600, leftovers_age=0) == []
    assert build_dirs(cache) == [after.path]
    assert python(after, "print(1)").returncode == 0


# -- interpreters ------------------------------------------------------------------------------


def test_a_python_version_the_machine_lacks_is_a_clear_error(make_task: MakeTask) -> None:
    folder = make_task("future", yaml='python: "3.12"\n')

    with pytest.raises(NoInterpreterError) as caught:
        planned(folder)

    message = str(caught.value)
    assert "`python:` in task.yaml '==3.12.*'" in message
    assert str(own()) in message  # what the machine does have
    assert "never downloads" in message


def test_a_requires_python_the_machine_lacks_is_a_clear_error(make_task: MakeTask) -> None:
    folder = make_task("future", script='# /// script\n# requires-python = ">=3.12"\n# ///\n')

    with pytest.raises(NoInterpreterError, match=r"requires-python in task\.py '>=3\.12'"):
        planned(folder)


def test_a_requires_python_the_machine_meets_builds(make_task: MakeTask, cache: EnvCache) -> None:
    folder = make_task("current", script='# /// script\n# requires-python = ">=3.11"\n# ///\n')

    environment = cache.build(planned(folder))

    result = python(environment, "import sys; print(sys.version_info >= (3, 11))")
    assert result.stdout.strip() == "True", result.stderr


def test_an_exact_python_picks_that_interpreter(make_task: MakeTask, cache: EnvCache) -> None:
    others = [i for i in on_path() if i.version != own().version]
    if not others:
        pytest.skip("this machine has one Python version only")
    wanted = others[0]
    folder = make_task("exact", yaml=f'python: "{wanted.version}"\n')

    the_plan = planned(folder)
    environment = cache.build(the_plan)

    assert the_plan.interpreter.version == wanted.version
    result = python(environment, "import platform; print(platform.python_version())")
    assert result.stdout.strip() == str(wanted.version), result.stderr
    assert the_plan.hash != planned(make_task("mine", yaml=None)).hash


# -- installer settings ------------------------------------------------------------------------


def test_index_settings_are_given_in_both_spellings() -> None:
    server = {
        "PIP_INDEX_URL": "https://pypi.example.org/simple",
        "UV_EXTRA_INDEX_URL": "https://extra.example.org/simple",
        "PIP_FIND_LINKS": "/srv/wheels",
        "UV_NO_INDEX": "1",
        "PIP_TRUSTED_HOST": "pypi.example.org",
        "HOME": "/home/tasse",
    }

    result = installer_environment(server)

    assert result["UV_INDEX_URL"] == result["PIP_INDEX_URL"] == "https://pypi.example.org/simple"
    assert result["PIP_EXTRA_INDEX_URL"] == "https://extra.example.org/simple"
    assert result["UV_FIND_LINKS"] == "/srv/wheels"
    assert result["PIP_NO_INDEX"] == "1"
    assert result["UV_INSECURE_HOST"] == "pypi.example.org"
    assert result["HOME"] == "/home/tasse"
    assert "UV_INDEX_URL" not in server  # the server's own environment is left alone


def test_a_setting_given_in_both_spellings_keeps_each() -> None:
    result = installer_environment(
        {"PIP_INDEX_URL": "https://a/simple", "UV_INDEX_URL": "https://b/simple"}
    )

    assert result["PIP_INDEX_URL"] == "https://a/simple"
    assert result["UV_INDEX_URL"] == "https://b/simple"


def test_installers_never_download_python_nor_see_tasses_virtualenv() -> None:
    result = installer_environment(
        {"UV_PYTHON_DOWNLOADS": "automatic", "VIRTUAL_ENV": "/opt/tasse", "PYTHONHOME": "/opt"}
    )

    assert result["UV_PYTHON_DOWNLOADS"] == "never"
    assert "VIRTUAL_ENV" not in result
    assert "PYTHONHOME" not in result


def test_auto_picks_uv_when_tasse_has_it() -> None:
    assert pick_installer("auto") == "uv"  # uv is one of Tasse's dependencies
    assert pick_installer("uv") == "uv"
    assert pick_installer("pip") == "pip"
