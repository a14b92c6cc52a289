"""Environment builds find packages where the user's pip.conf says, with uv as with pip.

uv reads no pip.conf; Tasse reads the files as pip does and hands their index settings
to uv. The wheels are built here, into find-links folders a real pip.conf names.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasse.envs.environments import EnvCache
from tasse.envs.installer import installer_environment
from tasse.envs.pip_config import config_files, configured
from tests.conftest import MakeTask
from tests.envs.test_environments import PROBE, imported_version, planned, write_wheel

OTHER = "tasse-probe-other"
_SETTINGS = (
    "INDEX_URL",
    "EXTRA_INDEX_URL",
    "FIND_LINKS",
    "NO_INDEX",
    "TRUSTED_HOST",
    "INSECURE_HOST",
    "CONFIG_FILE",
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No pip setting but the test's: an empty home and config folders, no variables."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "etc-xdg"))
    for name in _SETTINGS:
        monkeypatch.delenv(f"PIP_{name}", raising=False)
        monkeypatch.delenv(f"UV_{name}", raising=False)
    return home


@pytest.fixture
def cache(data_dir: Path) -> Iterator[EnvCache]:
    environments = EnvCache(data_dir / "venvs")
    yield environments
    environments.stop()


def _pip_conf(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_a_build_finds_the_wheels_pip_conf_names(
    home: Path,
    tmp_path: Path,
    make_task: MakeTask,
    cache: EnvCache,
    monkeypatch: pytest.MonkeyPatch,
    installer: str,
) -> None:
    first, second = tmp_path / "wheels-a", tmp_path / "wheels-b"
    first.mkdir()
    second.mkdir()
    write_wheel(first, PROBE, "3.1")
    write_wheel(second, OTHER, "1.2")
    # no index at all: only the folders can have these packages
    conf = _pip_conf(
        tmp_path / "conf" / "pip.conf",
        f"""
        [global]
        no-index = true
        find-links =
            {first}
            {second}
        """,
    )
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    folder = make_task("confd", requirements__txt=f"{PROBE}\n{OTHER}\n")

    environment = cache.build(planned(folder, installer))  # type: ignore[arg-type]

    assert imported_version(environment, "tasse_probe") == "3.1"
    assert imported_version(environment, "tasse_probe_other") == "1.2"


def test_pip_confs_index_settings_become_uvs_variables(home: Path, tmp_path: Path) -> None:
    conf = _pip_conf(
        tmp_path / "pip.conf",
        """
        [global]
        index-url = https://pypi.example.org/simple
        extra-index-url =
            https://one.example.org/simple
            https://two.example.org/simple
        find-links = /srv/wheels /srv/more-wheels
        trusted_host = pypi.example.org
        timeout = 60
        """,
    )

    result = installer_environment({**os.environ, "PIP_CONFIG_FILE": str(conf)})

    assert result["UV_INDEX_URL"] == "https://pypi.example.org/simple"
    assert result["UV_EXTRA_INDEX_URL"] == (
        "https://one.example.org/simple https://two.example.org/simple"
    )
    assert result["UV_FIND_LINKS"] == "/srv/wheels,/srv/more-wheels"  # uv: commas
    assert result["PIP_FIND_LINKS"] == "/srv/wheels /srv/more-wheels"
    assert result["UV_INSECURE_HOST"] == "pypi.example.org"
    assert "PIP_TIMEOUT" not in result  # only where packages come from is handed on


def test_files_load_in_pips_order_and_install_wins_over_global(home: Path, tmp_path: Path) -> None:
    environ = {**os.environ}
    site = _pip_conf(tmp_path / "etc-xdg" / "pip" / "pip.conf", "[global]\nindex-url = site\n")
    legacy = _pip_conf(home / ".pip" / "pip.conf", "[global]\nindex-url = legacy\n")
    user = _pip_conf(home / ".config" / "pip" / "pip.conf", "[global]\nindex-url = user\n")
    assert config_files(environ) == [site, Path("/etc/pip.conf"), legacy, user]
    assert configured(environ)["PIP_INDEX_URL"] == "user"

    given = _pip_conf(
        tmp_path / "given.conf",
        "[install]\nindex-url = install\n\n[global]\nindex-url = given\n",
    )
    environ["PIP_CONFIG_FILE"] = str(given)
    assert config_files(environ)[-1] == given
    assert configured(environ)["PIP_INDEX_URL"] == "install"

    environ["PIP_CONFIG_FILE"] = os.devnull  # pip's way of saying: no files
    assert config_files(environ) == []


def test_a_variable_wins_over_pip_conf(home: Path, tmp_path: Path) -> None:
    conf = _pip_conf(tmp_path / "pip.conf", "[global]\nindex-url = https://file/simple\n")
    environ = {**os.environ, "PIP_CONFIG_FILE": str(conf)}

    by_pip = installer_environment({**environ, "PIP_INDEX_URL": "https://pip/simple"})
    by_uv = installer_environment({**environ, "UV_INDEX_URL": "https://uv/simple"})

    assert by_pip["UV_INDEX_URL"] == by_pip["PIP_INDEX_URL"] == "https://pip/simple"
    assert by_uv["PIP_INDEX_URL"] == by_uv["UV_INDEX_URL"] == "https://uv/simple"


def test_a_broken_pip_conf_is_skipped(home: Path, tmp_path: Path) -> None:
    conf = _pip_conf(tmp_path / "pip.conf", "index-url = no section\n")

    assert configured({**os.environ, "PIP_CONFIG_FILE": str(conf)}) == {}
