"""Supertask's API at `/cronjobs/`: its jobs are Tasse's tasks, in its `CronJob` shape.

Routes as Supertask has them (and the list's without the slash too): `GET /cronjobs/`,
`POST /cronjobs/` from its form (`name`, `crontab`, `enabled`) or as JSON, and `GET`,
`PUT`, `DELETE /cronjobs/{id}`. Jobs made or changed here are API tasks; writes need the
token as `POST /tasks` does.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Body, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from tasse.http.api import Authorized, TasseDep
from tasse.models import TaskInfo
from tasse.service import Tasse
from tasse.tasks import cronjobs
from tasse.tasks.catalog import validate
from tasse.tasks.cronjobs import CRONJOBS_BODY, CronJob, CronJobBody
from tasse.tasks.definitions import TaskDefinition

router = APIRouter(tags=["Supertask"])
JobId = Annotated[int, Path(ge=0, description="the job's id, as `GET /cronjobs/` lists it")]
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
#: the body `POST /cronjobs/` reads by hand (a form or JSON), as /docs shows it
_POST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": CronJobBody.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["name", "crontab"],
                    "properties": {
                        "name": {"type": "string"},
                        "crontab": {"type": "string"},
                        "enabled": {"type": "boolean"},
                    },
                }
            },
        },
    }
}


@router.get("/cronjobs/")
@router.get("/cronjobs", include_in_schema=False)
async def list_cronjobs(tasse: TasseDep) -> list[CronJob]:
    """Every task as a Supertask job."""
    return [cronjobs.cronjob_of(info) for info in tasse.list_tasks()]


@router.get("/cronjobs/{job_id}")
async def get_cronjob(job_id: JobId, tasse: TasseDep) -> CronJob:
    """One task as a Supertask job."""
    return cronjobs.cronjob_of(_task(tasse, job_id))


@router.post("/cronjobs/", dependencies=Authorized, openapi_extra=_POST_BODY)
@router.post("/cronjobs", include_in_schema=False, dependencies=Authorized)
async def create_cronjob(request: Request, tasse: TasseDep) -> CronJob:
    """A new job, from Supertask's form (`name`, `crontab`, `enabled`) or as JSON."""
    body = await _body(request)
    infos = tasse.list_tasks()
    job_id = cronjobs.next_id(infos) if body.id is None else body.id
    if cronjobs.find(infos, job_id) is not None:
        raise HTTPException(409, f"a cron job with the id {job_id} exists already")
    name = cronjobs.new_name(body, job_id, {info.name for info in infos})
    await tasse.catalog.create(_definition(body, name, job_id))
    return cronjobs.cronjob_of(tasse.get_task(name))


@router.put("/cronjobs/{job_id}", dependencies=Authorized)
async def replace_cronjob(
    job_id: JobId, body: Annotated[CronJobBody, Body()], tasse: TasseDep
) -> CronJob:
    """Replace a job: its task keeps its name (and history); the job's name is its title."""
    if body.id is not None and body.id != job_id:
        raise HTTPException(422, f"the body's id ({body.id}) is not the path's ({job_id})")
    name = _task(tasse, job_id).name
    await tasse.catalog.put(_definition(body, name, job_id))
    return cronjobs.cronjob_of(tasse.get_task(name))


@router.delete("/cronjobs/{job_id}", dependencies=Authorized)
async def delete_cronjob(job_id: JobId, tasse: TasseDep) -> CronJob:
    """Delete a job; the answer is the job as it was (runs in progress finish)."""
    info = _task(tasse, job_id)
    await tasse.catalog.delete(info.name)
    return cronjobs.cronjob_of(info)


def _task(tasse: Tasse, job_id: int) -> TaskInfo:
    found = cronjobs.find(tasse.list_tasks(), job_id)
    if found is None:
        raise HTTPException(404, f"No cron job by the id of {job_id} was found")
    return found


def _definition(body: CronJobBody, name: str, job_id: int) -> TaskDefinition:
    return validate(cronjobs.definition_of(body, name, job_id), name, CRONJOBS_BODY)


async def _body(request: Request) -> CronJobBody:
    """The job a POST carries: its form's fields, or its JSON."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    raw = await request.body()
    try:
        if kind == "multipart/form-data":
            raise HTTPException(422, "send the form urlencoded (a browser's default) or JSON")
        data = _form_job(raw) if kind in _FORMS else json.loads(raw or b"null")
        return CronJobBody.model_validate(data)
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HTTPException(422, f"the body is neither a form nor JSON: {error}") from None


def _form_job(raw: bytes) -> dict[str, Any]:
    # Supertask's form: `name`, `crontab`, and `enabled` when its checkbox is ticked.
    fields = {key: values[-1] for key, values in parse_qs(raw.decode("utf-8")).items()}
    job: dict[str, Any] = {"name": fields.get("name", ""), "trigger_cron": fields.get("crontab")}
    job["enabled"] = fields.get("enabled", "false")
    return {key: value for key, value in job.items() if value is not None}
