"""The operator's REST admin API (``/v1/admin/...``, operator token).

- ``POST /v1/admin/directory/import`` (``text/csv`` body): all-or-nothing import.
- ``POST /v1/admin/directory/people`` (JSON): the same from records.
- ``GET  /v1/admin/schools/{uai}/people``: the school's directory.
- ``POST /v1/admin/people/{person_id}/enrolment-codes``: a one-time code.
- ``DELETE /v1/admin/people/{person_id}``: remove a person, their devices,
  codes, prekeys and queued envelopes.

A token scoped to a school acts on that school only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from protocol import ErrorCode
from server.admin_actions import import_directory, issue_enrolment_code, remove_person
from server.auth import operator_person, require_school, require_token
from server.directory_csv import parse_directory_csv
from server.dpo_audit import audit, audit_import
from server.errors import ApiError, read_model
from server.membership import sync_class_channels
from server.moderation_gate import GATE
from server.services import SERVICES
from server.state import CLOCK, SETTINGS, STORE
from storage.directory import ImportSummary, NumberedRecord
from storage.errors import ImportRejected
from storage.models import PersonRecord, School, SchoolSettings

OPERATOR = "operator"


class PeopleImport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schools: Annotated[list[School], Field(max_length=1000)] = []
    people: Annotated[list[PersonRecord], Field(min_length=1, max_length=50_000)]


def _summary(summary: ImportSummary) -> web.Response:
    return web.json_response(
        {
            "schools": summary.schools,
            "classes": summary.classes,
            "people_created": summary.people_created,
            "people_updated": summary.people_updated,
        }
    )


def _rejected(exc: ImportRejected) -> ApiError:
    return ApiError(
        ErrorCode.INVALID_REQUEST,
        "the import was refused; nothing was written",
        problems=[{"line": p.line, "reason": p.reason} for p in exc.problems[:500]],
    )


async def import_csv(request: web.Request) -> web.Response:
    grant = await require_token(request, OPERATOR)
    try:
        text = (await request.read()).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(ErrorCode.INVALID_REQUEST, "the file must be UTF-8") from None
    try:
        if grant.school is not None:
            for numbered in parse_directory_csv("request", text).records:
                require_school(grant, numbered.record.uai)
        summary = await import_directory(
            request.app[STORE],
            "request",
            text,
            request.app[CLOCK].now(),
            submit=request.app[SERVICES].sequencer.submit,
        )
    except ImportRejected as exc:
        raise _rejected(exc) from None
    request.app[GATE].cache.forget_people()  # the directory changed
    await audit_import(request, grant, summary)
    return _summary(summary)


async def import_people(request: web.Request) -> web.Response:
    grant = await require_token(request, OPERATOR)
    body = await read_model(request, PeopleImport)
    for record in body.people:
        require_school(grant, record.uai)
    numbered = [NumberedRecord(i + 1, r) for i, r in enumerate(body.people)]
    try:
        store, now = request.app[STORE], request.app[CLOCK].now()
        summary = await store.directory.apply_import("request", numbered, body.schools, now)
    except ImportRejected as exc:
        raise _rejected(exc) from None
    classes = await store.conversations.class_ids_of_schools(summary.uais)
    await sync_class_channels(store, request.app[SERVICES].sequencer.submit, now, classes)
    request.app[GATE].cache.forget_people()  # the directory changed
    await audit_import(request, grant, summary)
    return _summary(summary)


async def school_people(request: web.Request) -> web.Response:
    grant = await require_token(request, OPERATOR)
    uai = request.match_info["uai"]
    require_school(grant, uai)
    people = await request.app[STORE].directory.people_of_school(uai)
    return web.json_response({"people": [p.model_dump(mode="json") for p in people]})


async def enrolment_code(request: web.Request) -> web.Response:
    grant, person = await operator_person(request)
    store = request.app[STORE]
    days = request.app[SETTINGS].enrol_code_days
    code, expires_at = await issue_enrolment_code(
        store, person.id, request.app[CLOCK].now(), timedelta(days=days)
    )
    await audit(request, grant, "enrolment_code.issue", person.id, person.uai)
    return web.json_response(
        {"person_id": person.id, "code": code.text, "expires_at": expires_at.isoformat()},
        status=201,
    )


async def delete_person(request: web.Request) -> web.Response:
    grant, person = await operator_person(request)
    store = request.app[STORE]
    if await store.holds.held([person.id], request.app[CLOCK].now()):
        raise ApiError(ErrorCode.CONFLICT, "a legal hold suspends this person's deletion")
    await remove_person(
        store, person.id, request.app[CLOCK].now(), request.app[SERVICES].sequencer.submit
    )
    request.app[GATE].cache.forget_people()
    await audit(request, grant, "person.delete", person.id, person.uai)
    return web.Response(status=204)


async def put_school_settings(request: web.Request) -> web.Response:
    grant = await require_token(request, OPERATOR)
    uai = request.match_info["uai"]
    require_school(grant, uai)
    body = await read_model(request, SchoolSettings)
    store = request.app[STORE]
    if not await store.directory.set_school_settings(uai, body):
        raise ApiError(ErrorCode.NOT_FOUND, "no such school")
    request.app[SERVICES].receipts.forget_settings(uai)
    await audit(request, grant, "school.settings", uai, uai, body.model_dump())
    return web.json_response(body.model_dump())


async def get_school_settings(request: web.Request) -> web.Response:
    grant = await require_token(request, OPERATOR)
    uai = request.match_info["uai"]
    require_school(grant, uai)
    settings = await request.app[STORE].directory.school_settings(uai)
    return web.json_response(settings.model_dump())


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/admin/directory/import", import_csv)
    app.router.add_post("/v1/admin/directory/people", import_people)
    app.router.add_get("/v1/admin/schools/{uai}/people", school_people)
    app.router.add_get("/v1/admin/schools/{uai}/settings", get_school_settings)
    app.router.add_put("/v1/admin/schools/{uai}/settings", put_school_settings)
    app.router.add_post("/v1/admin/people/{person_id}/enrolment-codes", enrolment_code)
    app.router.add_delete("/v1/admin/people/{person_id}", delete_person)
