"""The Python interpreters on this machine, and the one a task's constraints pick.

Tasse never downloads an interpreter: it looks at its own and at `python3.N` on PATH.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

_NAME = re.compile(r"^python3(\.\d+)?$")
_PROBE = (
    "import os, platform, sys; "
    "print(platform.python_implementation().lower(), platform.python_version(), "
    "os.path.realpath(getattr(sys, '_base_executable', sys.executable)))"
)


@dataclass(frozen=True, order=True)
class Interpreter:
    """A base (not virtual-environment) Python interpreter."""

    version: Version
    implementation: str
    #: the real path of the executable, so one interpreter found twice is one
    path: str

    def __str__(self) -> str:
        return f"{self.implementation} {self.version} ({self.path})"


class NoInterpreterError(LookupError):
    """No interpreter on this machine satisfies a task's constraints."""


def parse_request(value: str) -> SpecifierSet:
    """`3.12` (any 3.12.x), `3.12.1` (exactly) or a specifier like `>=3.10,<3.13`."""
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+){0,2}", text):
        return SpecifierSet(f"=={text}" if text.count(".") == 2 else f"=={text}.*")
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        raise ValueError(f"{value!r} is not a Python version (like 3.12) or specifier") from None


@functools.cache
def own() -> Interpreter:
    """The interpreter Tasse runs on (the base one, if Tasse runs in a virtualenv)."""
    base = getattr(sys, "_base_executable", sys.executable)
    return Interpreter(
        Version(platform.python_version()),
        platform.python_implementation().lower(),
        os.path.realpath(base),
    )


@functools.cache
def on_path() -> tuple[Interpreter, ...]:
    """The other interpreters on PATH (probed once per process, only when needed)."""
    found: list[Interpreter] = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            path = os.path.join(directory, name)
            if _NAME.match(name) and os.access(path, os.X_OK):
                interpreter = _probe(path)
                if interpreter and all(interpreter.path != known.path for known in found):
                    found.append(interpreter)
    return tuple(found)


def choose(constraints: list[tuple[str, str]]) -> Interpreter:
    """The interpreter fitting every `(where, specifier)`: Tasse's own, else the newest."""

    def fits(interpreter: Interpreter) -> bool:
        return all(interpreter.version in SpecifierSet(spec) for _, spec in constraints)

    mine = own()
    if fits(mine):
        return mine
    fitting = [i for i in on_path() if fits(i)]
    if not fitting:
        wanted = " and ".join(f"{where} {spec!r}" for where, spec in constraints)
        have = ", ".join(str(i) for i in sorted({mine, *on_path()}))
        raise NoInterpreterError(
            f"no Python on this machine fits {wanted} (found: {have}); "
            "Tasse never downloads one: install it, or change the constraint"
        )
    return max(fitting)


def _probe(executable: str) -> Interpreter | None:
    real = shutil.which(executable) or executable
    try:
        output = subprocess.run(
            [real, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=10, check=True
        ).stdout.split()
        return Interpreter(Version(output[1]), output[0], output[2])
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return None  # not a working interpreter: not a candidate
