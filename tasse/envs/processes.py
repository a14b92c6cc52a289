"""Processes found by a variable in their environment (Linux's /proc).

What a server killed outright leaves behind — its installers (`TASSE_ENV_BUILD`) and its
runs' processes (`TASSE_RUN_ID`) — carries such a variable, so the next start finds it.
Here, the lowest part that spawns processes, so that `envs` and `runs` share one scan.
"""

from __future__ import annotations

import os


def processes_with(name: str) -> dict[int, str]:
    """Every other process whose environment sets `name`, with its value; {} without /proc."""
    marker = f"{name}=".encode()
    found: dict[int, str] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:  # no /proc (macOS): nothing can be found this way
        return found
    for entry in entries:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                variables = environ.read().split(b"\0")
        except OSError:  # gone, or another user's
            continue
        for variable in variables:
            if variable.startswith(marker):
                found[int(entry)] = os.fsdecode(variable[len(marker) :])
                break
    return found
