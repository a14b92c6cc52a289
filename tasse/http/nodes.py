"""`GET /nodes` (the servers sharing the store, the scheduler marked) and its page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from tasse.cluster.nodes import NodeInfo
from tasse.http.pages.session import Session, session_of
from tasse.http.pages.templating import render
from tasse.service import Tasse


async def _tasse(request: Request) -> Tasse:
    tasse: Tasse = request.app.state.tasse
    return tasse


TasseDep = Annotated[Tasse, Depends(_tasse)]
router = APIRouter()


@router.get("/nodes")
async def nodes(tasse: TasseDep) -> list[NodeInfo]:
    """Every node with a heartbeat in the store: name, role, version, heartbeat, whether it
    is alive and whether it holds the scheduler lease (fires schedules, starts runs)."""
    return await tasse.nodes()


@router.get("/ui/nodes", response_class=HTMLResponse, include_in_schema=False)
async def nodes_page(request: Request, tasse: TasseDep) -> HTMLResponse:
    """The nodes as a page (a browser asking for `/nodes` is sent here)."""
    session: Session = session_of(request, tasse.settings)
    found = await tasse.nodes()
    return render(request, tasse, session, "nodes.html", {"section": "nodes", "nodes": found})
