"""The end of a run's log kept by another node, for the scheduler's messages and the
dashboard's run page.

A notification ends with the last lines of its run's log (`notify/sending.py`); a run a
worker (or another node) carried out has its log there, so the delivering node reads the
end of it from that node's API (`GET /runs/{id}/log?raw=true`, the relay's route) — on a
delivery thread, within the delivery's timeout.
"""

from __future__ import annotations

import urllib.request
from http.client import HTTPException
from urllib.error import URLError

from tasse.errors import StoreUnavailableError
from tasse.store.nodes import Nodes
from tasse.store.runs import RunStore

#: bytes read at a time
CHUNK = 64 * 1024


class LogTails:
    """Reads the end of a run's log from the node whose data folder has it."""

    def __init__(self, store: RunStore):
        self._store = store
        self._nodes = Nodes(store)

    def __call__(self, run_id: str, size: int, timeout: float) -> bytes | None:
        """Its last `size` bytes, or None when the log is this node's (or nobody's)."""
        found = self.read(run_id, size, timeout)
        return None if found is None else found[0]

    def read(self, run_id: str, size: int, timeout: float) -> tuple[bytes, int] | None:
        """Its last `size` bytes and the whole log's size, or None when the log is this
        node's (or nobody's); OSError naming the node when it does not answer."""
        try:
            found = self._nodes.log_home(run_id)
        except StoreUnavailableError as error:  # as a node that does not answer: not known now
            raise OSError(f"where the log is cannot be read: {error}") from None
        if found is None:
            return None
        node, address = found
        if not address:
            raise OSError(f"node {node!r} has not written its API address")
        url = f"http://{address}/runs/{run_id}/log?raw=true"
        request = urllib.request.Request(url, headers={"X-Tasse-Relayed-By": "notifications"})
        tail, total = b"", 0
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                while chunk := answer.read(CHUNK):
                    tail, total = (tail + chunk)[-size:], total + len(chunk)
        except (URLError, HTTPException, ValueError) as error:  # ValueError: a bad address
            raise OSError(f"node {node!r} ({address}) did not answer: {error}") from None
        return tail, total
