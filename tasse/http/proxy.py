"""Passing a read on to the cluster node that has the answer: a run's log lives in the data
folder of the node that ran it, so that node's API answers and this one relays the bytes as
they come (docs/cluster.md, "Logs of runs on other nodes").

The request goes out as HTTP/1.0 with `Connection: close`: the answer is then the bytes up
to the end of the connection (no chunked encoding to undo), read on the loop with asyncio's
streams, so a followed log holds no worker thread. The request carries `X-Tasse-Relayed-By`,
and a node that receives it answers itself: a request is relayed once at most.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.responses import StreamingResponse

from tasse.errors import NodeUnreachableError
from tasse.service import Tasse

logger = logging.getLogger(__name__)

#: seconds to connect to the other node and read its answer's headers
CONNECT_TIMEOUT = 2.0
#: the request header naming the node that relayed it (the receiver never relays again)
RELAYED_BY = "X-Tasse-Relayed-By"
#: the request's headers the other node needs (a token, where a live stream resumes)
_ASKED = ("authorization", "last-event-id", "accept")
#: the answer's headers passed back (its status, type and these)
_ANSWERED = ("content-type", "content-disposition", "x-content-type-options", "cache-control")
_CHUNK = 64 * 1024


def relayed(request: Request) -> bool:
    """Whether another node relayed this request here (answer it here, whatever it asks)."""
    return RELAYED_BY in request.headers


async def from_log_home(
    request: Request, tasse: Tasse, run_id: str, quiet_for: float | None
) -> StreamingResponse | None:
    """The answer of the node that has the run's log, if that is another node (None:
    answer here)."""
    if relayed(request):
        return None
    home = await tasse.log_home(run_id)
    if home is None:
        return None
    node, address = home
    what = f"the log of run {run_id}"
    return await relay(request, what, node, address, tasse.store.node or "", quiet_for)


async def relay(
    request: Request,
    what: str,
    node: str,
    address: str | None,
    by: str,
    quiet_for: float | None,
) -> StreamingResponse:
    """The other node's answer to this request, streamed; 503 naming it if it does not
    answer within CONNECT_TIMEOUT, and the stream ends if it is quiet for `quiet_for` s."""
    if not address:
        raise NodeUnreachableError(what, node, None, "it has not written its API address")
    host, _, port = address.rpartition(":")
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host.strip("[]"), int(port)), CONNECT_TIMEOUT
        )
    except (OSError, ValueError, TimeoutError) as error:
        raise NodeUnreachableError(what, node, address, str(error) or "timed out") from None
    try:
        writer.write(_request(request, by, host))
        status, headers = await asyncio.wait_for(_head(reader), CONNECT_TIMEOUT)
    except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError) as error:
        writer.close()
        raise NodeUnreachableError(what, node, address, str(error) or "timed out") from None
    body = _body(reader, writer, what, node, quiet_for)
    passed = {name: value for name, value in headers.items() if name in _ANSWERED}
    passed["X-Tasse-Node"] = node
    return StreamingResponse(body, status_code=status, headers=passed)


def _request(request: Request, by: str, host: str) -> bytes:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    lines = [f"GET {target} HTTP/1.0", f"Host: {host}", "Connection: close", f"{RELAYED_BY}: {by}"]
    lines += [f"{name}: {request.headers[name]}" for name in _ASKED if name in request.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    raw = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = raw.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def _body(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    what: str,
    node: str,
    quiet_for: float | None,
) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.wait_for(reader.read(_CHUNK), quiet_for):
            yield chunk
    except (OSError, TimeoutError) as error:
        # The answer has begun: its status cannot change, the stream just ends (a live
        # stream's client reconnects and resumes from its last id).
        logger.warning("%s: node %s stopped answering: %s", what, node, error or "timed out")
    finally:
        writer.close()
