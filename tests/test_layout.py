"""The package's parts depend on each other in one order (docs/architecture.md, "Parts").

Imports run downwards only: cli → http → service → cluster → metrics → notify → runs → tasks
→ envs → schedule → store → the shared vocabulary. Every import counts, also one inside a
function or under TYPE_CHECKING: moving an import into a function hides a dependency, it does
not remove it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tasse

PACKAGE = Path(tasse.__file__).parent
#: the parts from the bottom up; each may import those before it, never those after
ORDER = (
    "store",
    "schedule",
    "envs",
    "tasks",
    "runs",
    "notify",
    "metrics",
    "cluster",
    "service",
    "http",
    "cli",
)
#: top-level modules every part may use; they import nothing but each other
VOCABULARY = {"models", "settings", "errors", "values", "events"}
#: a third-party library with I/O of its own → the only part that may import it
CONFINED = {
    "apscheduler": "schedule",
    "cron_descriptor": "schedule",
    "watchdog": "tasks",
    "sqlalchemy": "store",
    "alembic": "store",
    "fastapi": "http",
    "starlette": "http",
    "uvicorn": "http",
    "prometheus_client": "metrics",
    "apprise": "notify",
    "procrastinate": "cluster",
}


def _modules(root: Path = PACKAGE) -> list[Path]:
    return sorted(root.rglob("*.py"))


def _part(path: Path, root: Path = PACKAGE) -> str:
    """The part a module of the package belongs to: its sub-package or top-level name."""
    relative = path.relative_to(root)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imports(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """Every absolute module name the file imports, with its line (relative ones resolved)."""
    names = []
    package = ["tasse", *path.relative_to(root).parent.parts]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module or ""]).strip(".")
            names.append((node.lineno, module))
            if module.count(".") < 2:
                # `from tasse.tasks import discovery` imports the module tasse.tasks.discovery
                names += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return names


def _rank(part: str) -> int:
    return -1 if part in VOCABULARY else ORDER.index(part)


def _known_part(module: str) -> str | None:
    """The part `tasse.x.y` belongs to, or None for the package itself and unknown names."""
    pieces = module.split(".")
    if pieces[0] != "tasse" or len(pieces) < 2:
        return None
    if pieces[1] in ORDER or pieces[1] in VOCABULARY:
        return pieces[1]
    return None


def _violations(path: Path, root: Path = PACKAGE) -> list[str]:
    """What in one module breaks the order of the parts or the confinement of a library."""
    part = _part(path, root)
    if part in ("__init__", "__main__"):
        return []  # the package's own entry points: `python -m tasse` is the CLI
    found = []
    for line, module in _imports(path, root):
        where = f"{path.relative_to(root.parent)}:{line}"
        target = _known_part(module)
        if target is not None and target != part and _rank(target) > _rank(part):
            found.append(f"{where}: {part} imports {module} ({target} is above it)")
        owner = CONFINED.get(module.split(".")[0])
        if owner is not None and owner != part:
            found.append(f"{where}: {module.split('.')[0]} belongs to {owner}/, not {part}")
    return found


def test_every_module_belongs_to_a_known_part() -> None:
    parts = {_part(path) for path in _modules()} - {"__init__", "__main__"}
    assert parts <= set(ORDER) | VOCABULARY


def test_imports_run_downwards_only() -> None:
    assert [problem for path in _modules() for problem in _violations(path)] == []


@pytest.mark.parametrize("folder", [p for p in ORDER if (PACKAGE / p).is_dir()])
def test_each_part_says_what_it_owns(folder: str) -> None:
    docstring = ast.get_docstring(ast.parse((PACKAGE / folder / "__init__.py").read_text()))
    assert docstring, f"tasse/{folder}/__init__.py has no docstring"
    assert "import" in docstring.lower(), f"tasse/{folder}: say what it may import"


def test_the_check_sees_upward_imports_and_stray_libraries(tmp_path: Path) -> None:
    """The rule is not vacuous: an upward import hidden in a function is caught."""
    root = tmp_path / "tasse"
    probe = root / "store" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "import fastapi\n\n\ndef f() -> None:\n    from tasse.runs import dispatcher\n"
    )
    assert _violations(probe, root) == [
        "tasse/store/probe.py:1: fastapi belongs to http/, not store",
        "tasse/store/probe.py:5: store imports tasse.runs (runs is above it)",
        "tasse/store/probe.py:5: store imports tasse.runs.dispatcher (runs is above it)",
    ]
