"""A `tasse worker`'s HTTP application: its runs' logs for the other nodes, and its health.

The cluster's nodes relay a run's log to the node that ran it (`http/proxy.py`); for a
worker, that is this application, with the very route functions a `tasse serve` node uses
(`api.run_log`, `events.run_log_events`) over the worker's runs (`cluster/worker_logs.py`).
Nothing else: a worker schedules nothing and takes no requests to run or change tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from tasse.cluster.worker import Worker
from tasse.cluster.worker_logs import WorkerLogs
from tasse.errors import TasseError
from tasse.http import api, events
from tasse.http.app import invalid_request, tasse_error
from tasse.http.failures import InternalErrors
from tasse.service.tasse import reachable
from tasse.settings import Settings

logger = logging.getLogger(__name__)


def create_worker_app(settings: Settings) -> FastAPI:
    """The worker's application; its lifespan starts the worker and stops it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = Worker(settings, address=reachable(settings.http_listen_address))
        app.state.tasse = WorkerLogs(worker)  # what the log routes read (`WorkerLogs`)
        await worker.start()
        working = asyncio.get_running_loop().create_task(worker.work())
        working.add_done_callback(_stopped_working)
        app.state.working = working
        try:
            yield
        finally:
            app.state.tasse.events.close()
            await worker.stop()
            working.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await working

    app = FastAPI(title="Tasse worker", version="0.1.0", lifespan=lifespan)
    app.state.log_beat = events.LogBeat()  # the live logs' shared tick, as a node's
    app.add_api_route("/health", health, methods=["GET"])
    app.add_api_route(
        "/runs/{run_id}/log",
        api.run_log,
        methods=["GET"],
        response_class=PlainTextResponse,
    )
    app.add_api_route(
        "/runs/{run_id}/log/events",
        events.run_log_events,
        methods=["GET"],
        response_class=StreamingResponse,
    )
    app.add_middleware(InternalErrors)
    app.add_exception_handler(TasseError, tasse_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    return app


async def health(request: Request) -> JSONResponse:
    """200 while the worker takes runs; 503 once its queue loop has stopped."""
    logs: WorkerLogs = request.app.state.tasse
    working: asyncio.Task[None] = request.app.state.working
    body = {
        "status": "ok" if not working.done() else "stopped",
        "node": logs.worker.name,
        "role": "worker",
        "runs": logs.worker.running_count,
    }
    return JSONResponse(body, status_code=200 if not working.done() else 503)


def _stopped_working(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("the worker stopped taking runs: %s", task.exception())
