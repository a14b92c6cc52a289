"""What a task folder asks its Python environment to hold: read, validated, normalized.

Sources, first match wins: requirements.txt; pyproject.toml (PEP 621, or Poetry's table,
pinned by poetry.lock when there is one); a PEP 723 `# /// script` block in the
entrypoint. Reads files only; `environments.py` turns the result into an environment.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from tasse.envs import poetry
from tasse.errors import TaskConfigError

REQUIREMENTS = "requirements.txt"
PYPROJECT = "pyproject.toml"
POETRY_LOCK = "poetry.lock"
#: every file whose content can change a task's environment (besides its entrypoint)
DEPENDENCY_FILES = (REQUIREMENTS, PYPROJECT, POETRY_LOCK)
#: a dependency file is a list of names; anything larger is a mistake
MAX_FILE_BYTES = 1024 * 1024

#: PEP 723's reference expression for an inline metadata block
_PEP723_BLOCK = re.compile(
    r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$"
)
_PEP723_START = re.compile(r"(?m)^# /// script$")
#: requirement lines that point into the folder: the environment then belongs to it alone
_LOCAL = re.compile(
    r"^(-e|--editable|-f|--find-links|-r|--requirement|-c|--constraint|\.|/|file:)|@\s*file:"
)


@dataclass(frozen=True)
class Dependencies:
    """A task's normalized dependency spec: what goes into its environment and its hash."""

    #: the file it came from (`requirements.txt`, `task.py`, …), or "" for none
    source: str = ""
    #: requirement lines as the installer reads them, in a canonical order
    requirements: tuple[str, ...] = ()
    requires_python: str | None = None
    #: the lines name paths in the task folder, so the folder is part of the spec
    local: bool = False
    #: what Tasse chose on the user's behalf, shown with the environment's status
    note: str | None = None


def read_dependencies(
    name: str, folder: Path, entrypoint: str | None, files: Collection[str] | None = None
) -> Dependencies:
    """The dependency spec of a task folder; a bad file raises `TaskConfigError`.

    `files` names the regular files at the folder's top level, when the caller has listed
    them already (with thousands of folders, every stat saved shows).
    """
    if files is None:
        files = regular_files(folder)
    if REQUIREMENTS in files:
        requirements_file = folder / REQUIREMENTS
        lines = requirement_lines(name, requirements_file, _read(name, requirements_file))
        return Dependencies(REQUIREMENTS, _canonical(lines), local=bool(_local(lines)))
    if PYPROJECT in files:
        found = _from_pyproject(name, folder, _toml(name, folder / PYPROJECT), files)
        if found is not None:
            return found
    top_level = entrypoint in files
    if entrypoint and entrypoint.endswith(".py") and (top_level or (folder / entrypoint).is_file()):
        return _from_script(name, folder / entrypoint)
    return Dependencies()


def regular_files(folder: Path) -> set[str]:
    """The names of the regular files (or links to one) at the top of a folder."""
    with os.scandir(folder) as entries:
        return {entry.name for entry in entries if entry.is_file()}


def requirement_lines(name: str, file: Path, text: str) -> list[str]:
    """The meaningful lines of a requirements file, each checked; errors name the line."""
    lines: list[str] = []
    for number, line in _logical_lines(text):
        if line.startswith("-") or _LOCAL.search(line) or "://" in line:
            lines.append(line)  # options, paths and URLs go to the installer as written
            continue
        # Options after a requirement (`--hash=sha256:…` from pip-compile) stay with it.
        requirement, separator, options = line.partition(" --")
        checked = _requirement(name, file, requirement.strip(), f"line {number}")
        lines.append(f"{checked} --{options.strip()}" if separator else checked)
    return lines


def _logical_lines(text: str) -> list[tuple[int, str]]:
    # pip's format: `#` starts a comment (at the start or after whitespace), `\` continues.
    result: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = (pending + line).strip(), ""
        if line:
            result.append((start, line))
    return result


def _requirement(name: str, file: Path, text: str, key: str) -> str:
    try:
        requirement = Requirement(text)
    except InvalidRequirement as error:
        problem = str(error).splitlines()[0]
        raise TaskConfigError(
            name, file, f"{text!r} is not a requirement: {problem}", key
        ) from None
    # One spelling per requirement, so `Requests>=2` and `requests >= 2` share a hash.
    requirement.name = canonicalize_name(requirement.name)
    return str(requirement)


def _canonical(lines: list[str]) -> tuple[str, ...]:
    # Options keep their order (they may depend on it); requirements are a set.
    options = [line for line in lines if line.startswith("-")]
    return (*options, *sorted({line for line in lines if not line.startswith("-")}))


def _local(lines: list[str]) -> list[str]:
    return [line for line in lines if _LOCAL.search(line)]


def _from_pyproject(
    name: str, folder: Path, data: dict[str, Any], files: Collection[str]
) -> Dependencies | None:
    file = folder / PYPROJECT
    project = data.get("project")
    table = data.get("tool", {}).get("poetry", {}).get("dependencies")
    if isinstance(project, dict) and "dependencies" in project:
        items = _string_list(name, file, project["dependencies"], "project.dependencies")
        lines = [_requirement(name, file, item, "project.dependencies") for item in items]
        requires = _python_spec(name, file, project.get("requires-python"), "requires-python")
    elif table is not None:
        try:
            declared = poetry.declared(table, folder)
        except ValueError as error:
            raise TaskConfigError(name, file, str(error), "tool.poetry.dependencies") from None
        lines, requires = declared.requirements, declared.python
    else:
        return None
    lock_file = folder / POETRY_LOCK
    if POETRY_LOCK not in files:  # (Poetry 2 writes PEP 621 tables, locked all the same)
        return Dependencies(PYPROJECT, tuple(sorted(set(lines))), requires)
    try:
        pins = poetry.locked(_toml(name, lock_file), folder)
    except ValueError as error:
        raise TaskConfigError(name, lock_file, str(error)) from None
    note = (
        f"{POETRY_LOCK}: its {len(pins)} locked versions are installed as pins "
        "(read by Tasse, so the result is the same whether or not Poetry is installed)"
    )
    return Dependencies(POETRY_LOCK, tuple(sorted(pins)), requires, note=note)


def _from_script(name: str, script: Path) -> Dependencies:
    text = _read(name, script)
    if "# /// script" not in text or not _PEP723_START.search(text):  # most scripts have none
        return Dependencies()
    blocks = [m for m in _PEP723_BLOCK.finditer(text) if m.group("type") == "script"]
    if len(blocks) > 1:
        raise TaskConfigError(name, script, "has more than one `# /// script` block")
    if not blocks:
        raise TaskConfigError(name, script, "has a `# /// script` block that is not closed")
    content = "".join(
        line[2:] if line.startswith("# ") else line[1:]
        for line in blocks[0].group("content").splitlines(keepends=True)
    )
    try:
        data = tomllib.loads(content)
    except tomllib.TOMLDecodeError as error:
        raise TaskConfigError(name, script, f"its `# /// script` block: {error}") from None
    items = _string_list(name, script, data.get("dependencies", []), "dependencies")
    lines = [_requirement(name, script, item, "dependencies") for item in items]
    requires = _python_spec(name, script, data.get("requires-python"), "requires-python")
    return Dependencies(script.name, tuple(sorted(set(lines))), requires)


def _string_list(name: str, file: Path, value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TaskConfigError(name, file, f"must be a list of strings (got {value!r:.80})", key)
    return value


def _python_spec(name: str, file: Path, value: Any, key: str) -> str | None:
    if value is None:
        return None
    try:
        return str(SpecifierSet(str(value)))
    except InvalidSpecifier:
        raise TaskConfigError(
            name, file, f"{value!r:.80} is not a version specifier", key
        ) from None


def _read(name: str, file: Path) -> str:
    with open(file, "rb") as stream:
        # Sized by the file: read(1 MiB) would allocate that much for a 50-byte file.
        raw = stream.read(min(os.fstat(stream.fileno()).st_size, MAX_FILE_BYTES) + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise TaskConfigError(name, file, f"is larger than {MAX_FILE_BYTES} bytes")
    try:
        # Universal newlines, as Python reads source: a CRLF file has the same blocks.
        return raw.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError:
        raise TaskConfigError(name, file, "is not UTF-8 text") from None


def _toml(name: str, file: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(_read(name, file))
    except tomllib.TOMLDecodeError as error:
        raise TaskConfigError(name, file, f"is not valid TOML: {error}") from None
