"""Whether a process listens on a TCP port: so the CLI asks the server that holds its data
folder, not another one that happens to answer at the default address.

Linux's /proc only: the listening sockets of `/proc/net/tcp{,6}` matched against the
process's open descriptors. Elsewhere, or for another user's process, the answer is None.
"""

from __future__ import annotations

import os
from pathlib import Path

#: the state column's value of a listening socket
_LISTEN = "0A"


def listens_on(pid: int, port: int, proc: Path = Path("/proc")) -> bool | None:
    """True if `pid` holds a socket listening on `port`; None when that cannot be known."""
    inodes = _listening_inodes(port, proc)
    if inodes is None:
        return None
    try:
        descriptors = os.listdir(proc / str(pid) / "fd")
    except PermissionError:
        return None
    except FileNotFoundError:
        return False
    for descriptor in descriptors:
        try:
            target = os.readlink(proc / str(pid) / "fd" / descriptor)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def _listening_inodes(port: int, proc: Path) -> set[str] | None:
    inodes: set[str] = set()
    found_any = False
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        found_any = True
        for line in lines:
            fields = line.split()
            # local address is HEX_IP:HEX_PORT; the inode is the tenth field
            if len(fields) > 9 and fields[3] == _LISTEN and fields[1].endswith(f":{port:04X}"):
                inodes.add(fields[9])
    return inodes if found_any else None
