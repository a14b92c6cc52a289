"""`create_app(settings)`: the FastAPI application, its lifespan and its error mapping."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from tasse.errors import (
    ClusterUnavailableError,
    FolderTaskError,
    RunFinishedError,
    StoreUnavailableError,
    TaskBrokenError,
    TaskBusyError,
    TaskConfigError,
    TaskEnvError,
    TaskExistsError,
    TasseError,
)
from tasse.http.api import router
from tasse.http.cronjobs import router as cronjobs_router
from tasse.http.events import LogBeat
from tasse.http.events import router as events_router
from tasse.http.failures import InternalErrors
from tasse.http.limits import BodyLimit
from tasse.http.nodes import router as nodes_router
from tasse.http.pages import actions
from tasse.http.pages import routes as pages
from tasse.http.pages.negotiation import Negotiation
from tasse.http.pages.templating import error_page, is_page
from tasse.service import Tasse
from tasse.settings import Settings
from tasse.values import shorten

logger = logging.getLogger(__name__)

#: Tasse's errors → HTTP statuses, first match wins; anything else of ours is a bad request.
#: Exceptions that are not Tasse's are 500s with an id (`InternalErrors`). A store that
#: fails now raises SQLAlchemy's errors, so those are 500s too; once store/ turns its
#: timeouts and lost connections into StoreUnavailableError, they are this 503.
_STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (StoreUnavailableError, 503),
    (ClusterUnavailableError, 503),
    (LookupError, 404),
    (TaskBusyError, 409),
    (TaskBrokenError, 409),
    (RunFinishedError, 409),
    (TaskEnvError, 409),
    (TaskExistsError, 409),
    (FolderTaskError, 409),
    (TaskConfigError, 422),
    (ValueError, 422),
)


async def tasse_error(request: Request, error: Exception) -> Response:
    status = getattr(error, "http_status", None)  # another cluster node's answer, passed on
    if status is None:
        status = next((code for kind, code in _STATUS_BY_ERROR if isinstance(error, kind)), 400)
    if is_page(request):
        return error_page(request, status, str(error))
    return JSONResponse({"detail": str(error)}, status_code=status)


async def invalid_request(request: Request, error: Exception) -> Response:
    # FastAPI's own answer echoes every bad value whole: a 1 MiB body, a 1 MiB answer.
    assert isinstance(error, RequestValidationError)
    if is_page(request):
        return error_page(
            request, 404, "There is no such page: the address is not one Tasse makes."
        )
    problems = [
        {"type": e["type"], "loc": e["loc"], "msg": shorten(str(e["msg"]))}
        for e in error.errors()[:20]
    ]
    return JSONResponse({"detail": jsonable_encoder(problems)}, status_code=422)


def create_app(settings: Settings) -> FastAPI:
    """The Tasse HTTP application for these settings; the lifespan starts and stops Tasse."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.listens_beyond_loopback and settings.api_token is None:
            logger.warning(
                "LISTENING ON %s WITHOUT AN API TOKEN: anyone who can reach this port can "
                "run and cancel tasks. Set TASSE_API_TOKEN or --api-token-file.",
                settings.http_listen_address,
            )
        tasse = Tasse(settings)
        app.state.tasse = tasse
        await tasse.start()
        try:
            yield
        finally:
            await tasse.stop()

    app = FastAPI(
        title="Tasse",
        summary="A folder is a task: schedules, per-task environments, history and logs.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.include_router(router)
    app.include_router(cronjobs_router)
    app.include_router(nodes_router)
    app.include_router(pages.router)
    app.include_router(actions.router)
    app.mount("/static", StaticFiles(packages=[("tasse.http.pages", "static")]), name="static")
    app.include_router(events_router)
    app.state.log_beat = LogBeat()  # the live logs' shared tick
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(Negotiation)
    app.add_middleware(InternalErrors)  # the outermost of ours: it sees what the others raise
    app.add_exception_handler(TasseError, tasse_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    return app
