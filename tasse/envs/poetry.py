"""Poetry's dependency table and lock file, as PEP 508 requirement lines for any installer.

Poetry's constraint syntax (`^1.2`, `~1.2.3`, `1.2.*`) is not PEP 440; this translates it
the way Poetry documents it. Errors are `ValueError`s with the offending entry named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet

_OPERATOR = re.compile(r"^(>=|<=|!=|==|~=|>|<)")


@dataclass
class Declared:
    """`[tool.poetry.dependencies]` as requirement lines and a Python constraint."""

    requirements: list[str] = field(default_factory=list)
    python: str | None = None


def declared(table: Any, folder: Path) -> Declared:
    """Translate Poetry's dependency table; raises ValueError naming the entry at fault."""
    if not isinstance(table, dict):
        raise ValueError(f"must be a table of dependencies (got {table!r:.80})")
    result = Declared()
    for name, value in table.items():
        if name == "python":
            result.python = to_specifier(str(value)) or None
            continue
        try:
            line = _requirement(name, value, folder)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
        if line is not None:
            result.requirements.append(line)
    return result


def locked(lock: dict[str, Any], folder: Path) -> list[str]:
    """Pins for every package the lock installs for the main group."""
    if "metadata" not in lock or not isinstance(lock.get("package", []), list):
        raise ValueError("is not a Poetry lock file (no [metadata] and [[package]] entries)")
    pins = []
    for package in lock.get("package", []):
        if not _for_main_group(package):
            continue
        name, version = package.get("name"), package.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            raise ValueError(f"a [[package]] entry lacks a name or version: {package!r:.80}")
        line = _locked_line(name, version, package.get("source"), folder)
        marker = package.get("markers")
        if isinstance(marker, dict):
            marker = marker.get("main")
        pins.append(_checked(f"{line} ; {marker}" if isinstance(marker, str) else line))
    return pins


def to_specifier(constraint: str) -> str:
    """`^1.2` → `<2.0,>=1.2`, `~1.2.3` → `<1.3.0,>=1.2.3`, `1.2.*` → `==1.2.*`, `*` → ``."""
    if "||" in constraint:
        raise ValueError(f"{constraint!r}: alternatives (`||`) are not supported")
    # `>= 1.2, < 1.5` and `>=1.2 <1.5` alike: operators joined to their versions first.
    joined = re.sub(r"(>=|<=|!=|==|~=|>|<|\^|~)\s+", r"\1", constraint.strip())
    specifiers = [s for part in re.split(r"[,\s]+", joined) if part for s in _one(part)]
    try:
        return str(SpecifierSet(",".join(specifiers)))
    except InvalidSpecifier:
        raise ValueError(f"{constraint!r} is not a version constraint") from None


def _one(part: str) -> list[str]:
    if part in ("*", ""):
        return []
    if part.startswith("^"):
        return [f">={part[1:]}", f"<{_bump(part[1:], caret=True)}"]
    if part.startswith("~") and not part.startswith("~="):
        return [f">={part[1:]}", f"<{_bump(part[1:], caret=False)}"]
    if _OPERATOR.match(part):
        return [part]
    return [f"=={part}"]


def _bump(version: str, caret: bool) -> str:
    try:
        numbers = [int(n) for n in version.split(".")]
    except ValueError:
        raise ValueError(f"{version!r}: only plain release versions take ^ or ~") from None
    if caret:  # the first non-zero component may not change
        at = next((i for i, n in enumerate(numbers) if n != 0), len(numbers) - 1)
    else:  # ~1.2.3 and ~1.2 pin the minor version; ~1 the major one
        at = min(1, len(numbers) - 1)
    upper = [*numbers[:at], numbers[at] + 1] + [0] * (len(numbers) - at - 1)
    return ".".join(map(str, upper))


def _requirement(name: str, value: Any, folder: Path) -> str | None:
    if isinstance(value, str):
        return _checked(f"{name}{to_specifier(value)}")
    if not isinstance(value, dict):
        raise ValueError(f"a constraint is a string or a table (got {value!r:.80})")
    if value.get("optional"):
        return None  # installed only with an extra, which a task never asks for
    extras = f"[{','.join(value['extras'])}]" if value.get("extras") else ""
    if "git" in value:
        ref = value.get("rev") or value.get("tag") or value.get("branch")
        target = f" @ git+{value['git']}" + (f"@{ref}" if ref else "")
    elif "path" in value:
        target = f" @ {(folder / value['path']).resolve().as_uri()}"
    elif "url" in value:
        target = f" @ {value['url']}"
    else:
        target = to_specifier(str(value.get("version", "*")))
    markers = [value["markers"]] if value.get("markers") else []
    if value.get("python"):
        specifier = to_specifier(str(value["python"]))
        markers += [
            f'python_full_version {s.operator} "{s.version}"' for s in SpecifierSet(specifier)
        ]
    return _checked(f"{name}{extras}{target}" + (f" ; {' and '.join(markers)}" if markers else ""))


def _for_main_group(package: dict[str, Any]) -> bool:
    if package.get("optional"):
        return False
    if "groups" in package:  # lock format 2.1 (Poetry 2)
        return "main" in package["groups"]
    return bool(package.get("category", "main") == "main")  # lock format 1.x and 2.0


def _locked_line(name: str, version: str, source: Any, folder: Path) -> str:
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "git":
        reference = source.get("resolved_reference") or source.get("reference")
        return f"{name} @ git+{source['url']}@{reference}"
    if kind in ("directory", "file"):
        return f"{name} @ {(folder / source['url']).resolve().as_uri()}"
    if kind == "url":
        return f"{name} @ {source['url']}"
    return f"{name}=={version}"  # PyPI, or a private index the installer is told about


def _checked(line: str) -> str:
    try:
        return str(Requirement(line))
    except InvalidRequirement as error:
        raise ValueError(f"{line!r} is not a requirement: {str(error).splitlines()[0]}") from None
