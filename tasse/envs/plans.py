"""What decides an environment: the dependencies, the interpreter, the installer, and their hash.

Planning probes interpreters, so it runs off the loop; the result is cached, since
thousands of tasks usually share a handful of specs. A plan is asked for by anything that
needs an environment (`EnvNeeds`): this part does not know what a task is.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from tasse.envs.dependencies import Dependencies
from tasse.envs.interpreters import Interpreter, choose, parse_request

Installer = Literal["uv", "pip"]


class EnvNeeds(Protocol):
    """What an environment is built for: a task, as this part sees it."""

    @property
    def name(self) -> str:
        """Whose environment it is (log lines and errors name it)."""

    @property
    def folder(self) -> Path:
        """Where the installer runs: relative paths in requirements are this folder's."""

    @property
    def dependencies(self) -> Dependencies | None:
        """What the environment holds; None when it needs none."""

    @property
    def python(self) -> str | None:
        """The interpreter asked for (`3.12`, `>=3.10`), if any."""


@dataclass(frozen=True)
class EnvPlan:
    """Everything that decides an environment's content, and the hash naming it."""

    dependencies: Dependencies
    interpreter: Interpreter
    installer: Installer
    #: where the installer runs: relative paths in requirements are the task folder's
    folder: Path
    hash: str


@functools.cache
def uv_binary() -> str | None:
    """The uv executable shipped with Tasse (or on PATH), if any."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def pick_installer(setting: str) -> Installer:
    """`auto` means uv when it is there, virtualenv + pip otherwise."""
    if setting == "pip" or (setting == "auto" and uv_binary() is None):
        return "pip"
    return "uv"


def plan(needs: EnvNeeds, dependencies: Dependencies, installer: Installer) -> EnvPlan:
    """Choose the interpreter and hash the spec; raises NoInterpreterError."""
    # Paths in the lines are the folder's, so only this folder may share it.
    folder = str(needs.folder.resolve()) if dependencies.local else None
    interpreter, digest = _choose_and_hash(dependencies, needs.python, installer, folder)
    return EnvPlan(dependencies, interpreter, installer, needs.folder, digest)


@functools.lru_cache(maxsize=4096)
def _choose_and_hash(
    dependencies: Dependencies, python: str | None, installer: Installer, folder: str | None
) -> tuple[Interpreter, str]:
    # Cached: thousands of tasks usually share a handful of specs (most, the bare one).
    constraints = []
    if python:
        constraints.append(("`python:` in task.yaml", str(parse_request(python))))
    if dependencies.requires_python:
        where = f"requires-python in {dependencies.source}"
        constraints.append((where, dependencies.requires_python))
    interpreter = choose(constraints)
    spec = {
        "requirements": dependencies.requirements,
        "python": [interpreter.implementation, str(interpreter.version), interpreter.path],
        "installer": installer,
        "folder": folder,
    }
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    return interpreter, digest
