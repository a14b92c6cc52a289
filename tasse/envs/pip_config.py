"""The index settings in a user's pip configuration files, for an installer that reads none.

pip reads `pip.conf`; uv does not. A machine set up for pip (a company index, a wheel
folder) would build with pip and fail with uv, so the settings an installer needs to find
packages are read here as pip reads them and handed to uv as its variables.

Files, later ones winning, as pip loads them: `$XDG_CONFIG_DIRS/pip/pip.conf` (default
`/etc/xdg`), `/etc/pip.conf`, `~/.pip/pip.conf`, `$XDG_CONFIG_HOME/pip/pip.conf` (default
`~/.config`), then `$PIP_CONFIG_FILE`; `PIP_CONFIG_FILE=/dev/null` means none. In each,
`[install]` wins over `[global]`.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from pathlib import Path

#: the keys that say where packages come from, with pip's variable for each
KEYS = {
    "index-url": "PIP_INDEX_URL",
    "extra-index-url": "PIP_EXTRA_INDEX_URL",
    "find-links": "PIP_FIND_LINKS",
    "no-index": "PIP_NO_INDEX",
    "trusted-host": "PIP_TRUSTED_HOST",
}
#: sections read, the later winning (`pip install` reads `[install]` over `[global]`)
_SECTIONS = ("global", "install")


def config_files(environ: Mapping[str, str]) -> list[Path]:
    """pip's configuration files in the order it loads them (later ones win), existing or not."""
    given = environ.get("PIP_CONFIG_FILE")
    if given == os.devnull:
        return []
    home = Path(environ.get("HOME") or Path.home())
    dirs = environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [Path(d) / "pip" / "pip.conf" for d in dirs.split(":") if d]
    files.append(Path("/etc/pip.conf"))
    files.append(home / ".pip" / "pip.conf")
    files.append(Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "pip" / "pip.conf")
    if given:
        files.append(Path(given))
    return files


def configured(environ: Mapping[str, str]) -> dict[str, str]:
    """The index settings pip's files give, as pip's variables (lists space-separated)."""
    found: dict[str, str] = {}
    for file in config_files(environ):
        parser = configparser.RawConfigParser()
        try:
            parser.read(file, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError, OSError):
            continue  # pip stops on a broken file; an installer run here says so itself
        for section in _SECTIONS:
            if not parser.has_section(section):
                continue
            for key, value in parser.items(section):
                variable = KEYS.get(key.replace("_", "-"))
                if variable is not None:
                    found[variable] = _value(key, value)
    return found


def _value(key: str, value: str) -> str:
    if key.replace("_", "-") == "no-index":
        truthy = value.strip().lower() in ("1", "true", "yes", "on")
        return "1" if truthy else "0"
    return " ".join(value.split())  # several values, one a line or on one line
