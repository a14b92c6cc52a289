"""`tasse next NAME` while a server runs: the times that server will fire, as `/next` lists.

An interval counts from when its task was scheduled, so times computed by this process
would be off by however long ago the server loaded the task; the server's own listing
is what `next_run_at` and `GET /tasks/{name}/next` say.
"""

from __future__ import annotations

import sys
from datetime import datetime
from urllib.parse import quote

from tasse.cli.remote import ServerSilentError, ask_server, server_runs
from tasse.settings import Settings


def served_fires(settings: Settings, name: str, count: int) -> list[datetime] | None:
    """The task's next fire times from the server on the data folder; None when none answers."""
    if not server_runs(settings):
        return None
    try:
        answer = ask_server(settings, f"/tasks/{quote(name)}/next?count={count}")
    except ServerSilentError as error:
        print(
            f"tasse: {error}; the times below are computed here, and an interval's may "
            "differ from the server's",
            file=sys.stderr,
        )
        return None
    return [datetime.fromisoformat(text) for text in answer]
