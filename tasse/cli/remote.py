"""Asking the server that holds the data folder, at its listen address, with its token
(`server_api.ServerApi`, for the commands that write: pause, resume, next beside a server)."""

from __future__ import annotations

import argparse
from typing import Any

from tasse.cli.server_api import ANSWER_TIMEOUT, ServerApi, ServerUnreachableError, default_url
from tasse.errors import DataFolderBusyError, TasseError
from tasse.settings import Settings
from tasse.store.data_lock import DataLock


class ServerSilentError(TasseError):
    """The server holding the data folder does not answer at the address given."""


def server_options() -> argparse.ArgumentParser:
    """The flags that find the running server: its address and its token."""
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument(
        "--http-listen-address", help="the running server's HOST:PORT (default: 127.0.0.1:4243)"
    )
    server.add_argument("--api-token-file", help="file with the server's API token")
    return server


def server_runs(settings: Settings) -> bool:
    """Whether a server holds the data folder now (its lock is taken)."""
    lock = DataLock(settings.data_dir)
    try:
        lock.acquire()
    except DataFolderBusyError:
        return True
    lock.release()
    return False


def ask_server(
    settings: Settings,
    path: str,
    body: dict[str, Any] | None = None,
    timeout: float = ANSWER_TIMEOUT,
) -> Any:
    """The server's JSON answer to GET `path` (POST with `body`); its errors as TasseError."""
    token = settings.api_token.get_secret_value() if settings.api_token is not None else None
    api = ServerApi(default_url(settings), token)
    try:
        return api.get_json(path) if body is None else api.post_json(path, body, timeout)
    except ServerUnreachableError as error:
        raise ServerSilentError(
            f"the server on {settings.data_dir.absolute()} does not answer at {api.url}"
            f" ({error.reason}); give its address with --http-listen-address"
        ) from None
