"""Ports for the servers tests start, one range per pytest-xdist worker.

A port the kernel hands out for `bind(..., 0)` comes from the ephemeral range, the same
range every outgoing connection (to PostgreSQL, to a test's own server) takes its local
port from, and another worker's test may be handed it too before our server binds it:
then a health check answers from the wrong server. Below the ephemeral range
(32768 and up on Linux) and split by worker, a port is this worker's alone.
"""

from __future__ import annotations

import itertools
import os
import socket

FIRST = 20_000
#: ports below the ephemeral range (32768 and up on Linux), shared out among the workers
PORTS = 12_000


def _range() -> range:
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # "gw3"; unset without -n
    index = int(name.removeprefix("gw") or 0)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    span = PORTS // max(workers, 1)
    return range(FIRST + index * span, FIRST + (index + 1) * span)


_next = itertools.cycle(_range())


def free_port() -> int:
    """A port nothing listens on now, from this worker's range (skipping any in use)."""
    for port in _next:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("unreachable: the cycle never ends")
