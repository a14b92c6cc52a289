"""Asking the server that holds the data folder, at its listen address, with its token."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from typing import Any

from tasse.errors import DataFolderBusyError, TasseError
from tasse.settings import Settings
from tasse.store.data_lock import DataLock

#: seconds the server has to answer
ANSWER_TIMEOUT = 10.0


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
    host = settings.host
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    base = f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"
    headers = {"Content-Type": "application/json"}
    if settings.api_token is not None:
        headers["Authorization"] = f"Bearer {settings.api_token.get_secret_value()}"
    data = None if body is None else json.dumps(body).encode()
    method = "GET" if body is None else "POST"
    request = urllib.request.Request(base + path, data, headers, method=method)
    # The server is this machine's or named by its address: no proxy stands between.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        hint = " (give the token: TASSE_API_TOKEN or --api-token-file)" * (error.code == 401)
        raise TasseError(f"{_detail(error)}{hint} (HTTP {error.code} from {base})") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ServerSilentError(
            f"the server on {settings.data_dir.absolute()} does not answer at {base} ({reason});"
            " give its address with --http-listen-address"
        ) from None


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(error.read())["detail"]
    except (ValueError, KeyError, TypeError, OSError):
        return str(error.reason)
    return detail if isinstance(detail, str) else json.dumps(detail)
