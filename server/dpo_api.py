"""The DPO's API (``/v1/dpo/...``, DPO token, optionally scoped to one school).

- ``GET  /v1/dpo/register`` and ``/v1/dpo/register.html``: the art. 30 record.
- ``GET  /v1/dpo/people/{person_id}/export``: art. 15 archive (streamed zip).
- ``POST /v1/dpo/people/{person_id}/erase``: art. 17 erasure (or ``dry_run``).
- ``POST|GET /v1/dpo/requests``, ``PATCH /v1/dpo/requests/{id}``: art. 12 requests.
- ``POST /v1/dpo/breach-scope``: art. 33 scoping of a device, person or school.
- ``POST|GET /v1/dpo/holds``, ``DELETE /v1/dpo/holds/{id}``: legal holds.
- ``GET  /v1/dpo/retention/dry-run``: what each retention job would delete.
- ``GET  /v1/dpo/audit`` (filters) and ``/v1/dpo/audit/verify``.
- ``POST /v1/admin/people/{person_id}/leave`` (operator): a person left the
  school; the retention clock starts (arrêté ENT 30/11/2006, art. 6).

A scoped token acts on its school only (``forbidden`` otherwise); with no
``school`` parameter it means its own school. Every call is recorded in the
audit log, reading the audit log included.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocol import ErrorCode
from server.auth import operator_person, require_school, require_token
from server.dpo_audit import actor_of, audit
from server.dpo_erasure import ErasureBlocked, erase_person
from server.dpo_export import plain, stream_export
from server.errors import ApiError, read_model, validation_message
from server.register import build_register, render_html
from server.state import CLOCK, RETENTION, SETTINGS, STORE
from storage.breach import Origin
from storage.dpo_requests import RequestKind, RequestStatus
from storage.legal_holds import HoldKind
from storage.models import Person
from storage.tokens import ApiToken

DPO = "dpo"
OPERATOR = "operator"
Note = Annotated[str, Field(max_length=1000)]
Id = Annotated[str, Field(pattern=r"^[a-z]_[A-Za-z0-9_-]{4,60}$")]


class EraseBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: Id | None = None
    dry_run: bool = False


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    person_id: Id
    kind: RequestKind
    received_at: AwareDatetime | None = None
    note: Note = ""


class RequestUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: RequestStatus
    outcome: Note = ""


class HoldBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["person", "conversation"]
    subject: Id
    reason: Annotated[str, Field(min_length=3, max_length=1000)]
    until: AwareDatetime


class BreachBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    device_id: Id | None = None
    person_id: Id | None = None
    school: Annotated[str, Field(pattern=r"^[0-9]{7}[A-Z]$")] | None = None
    since: AwareDatetime
    until: AwareDatetime

    @model_validator(mode="after")
    def _one_origin(self) -> BreachBody:
        if sum(v is not None for v in (self.device_id, self.person_id, self.school)) != 1:
            raise ValueError("give exactly one of device_id, person_id, school")
        if self.until < self.since:
            raise ValueError("until is before since")
        return self


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    school: str | None = None
    action: Annotated[str, Field(max_length=100)] | None = None
    target: Annotated[str, Field(max_length=100)] | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    after: Annotated[int, Field(ge=0)] = 0
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


# -- scoping ----------------------------------------------------------------------------


async def _dpo(request: web.Request) -> ApiToken:
    return await require_token(request, DPO)


def _school(request: web.Request, grant: ApiToken, school: str | None = None) -> str | None:
    """The school a call is about: the parameter, else the token's own (checked)."""
    school = school or request.query.get("school") or grant.school
    if school is not None:
        require_school(grant, school)
    return school


async def _person(request: web.Request, grant: ApiToken) -> Person:
    person = await request.app[STORE].directory.person(request.match_info["person_id"])
    if person is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such person")
    require_school(grant, person.uai)
    return person


def _query(request: web.Request) -> AuditQuery:
    try:
        return AuditQuery.model_validate(dict(request.query))
    except ValidationError as exc:
        raise ApiError(
            ErrorCode.INVALID_REQUEST, "invalid query", fields=validation_message(exc)
        ) from None


def _json(value: object, status: int = 200) -> web.Response:
    return web.json_response(plain(value), status=status)


# -- register (art. 30) -----------------------------------------------------------------


async def _register(request: web.Request) -> dict[str, object]:
    grant = await _dpo(request)
    uai = _school(request, grant)
    school = await request.app[STORE].directory.school(uai) if uai else None
    await audit(request, grant, "register.read", None, uai)
    info = {"uai": school.uai, "name": school.name} if school else None
    return build_register(request.app[SETTINGS], request.app[CLOCK].now(), info)


async def register_json(request: web.Request) -> web.Response:
    return _json(await _register(request))


async def register_html(request: web.Request) -> web.Response:
    page = render_html(await _register(request))
    return web.Response(text=page, content_type="text/html", charset="utf-8")


# -- access and erasure (art. 15, 17) ---------------------------------------------------


async def export_person(request: web.Request) -> web.StreamResponse:
    grant = await _dpo(request)
    person = await _person(request, grant)
    store = request.app[STORE]
    await audit(request, grant, "person.export", person.id, person.uai)
    ids = await store.subjects.identifiers(person.id)
    return await stream_export(request, store, ids, request.app[CLOCK].now())


async def erase(request: web.Request) -> web.Response:
    grant = await _dpo(request)
    person = await _person(request, grant)
    body = await read_model(request, EraseBody)
    store = request.app[STORE]
    try:
        report = await erase_person(
            store,
            person.id,
            actor_of(grant),
            request.app[CLOCK].now(),
            request_id=body.request_id,
            dry_run=body.dry_run,
        )
    except ErasureBlocked:
        raise ApiError(ErrorCode.CONFLICT, "a legal hold suspends this person's erasure") from None
    if body.dry_run:
        await audit(request, grant, "person.erase.dry_run", person.id, person.uai)
    return _json(report.as_dict())


# -- requests (art. 12) -----------------------------------------------------------------


async def add_request(request: web.Request) -> web.Response:
    grant = await _dpo(request)
    body = await read_model(request, RequestBody)
    store = request.app[STORE]
    person = await store.directory.person(body.person_id)
    if person is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such person")
    require_school(grant, person.uai)
    now = request.app[CLOCK].now()
    doc = await store.dpo_requests.record(
        body.kind, person.id, person.uai, body.received_at or now, body.note, actor_of(grant)
    )
    await audit(request, grant, "request.record", doc["_id"], person.uai, {"kind": body.kind})
    return _json(doc, status=201)


async def list_requests(request: web.Request) -> web.Response:
    grant = await _dpo(request)
    school = _school(request, grant)
    status = request.query.get("status")
    if status is not None and status not in set(RequestStatus):
        raise ApiError(ErrorCode.INVALID_REQUEST, "status is open, done or refused")
    now = request.app[CLOCK].now()
    docs = await request.app[STORE].dpo_requests.listing(
        school,
        now,
        RequestStatus(status) if status else None,
        overdue_only=request.query.get("overdue") in ("1", "true"),
    )
    await audit(request, grant, "request.list", None, school)
    return _json({"requests": docs, "now": now})


async def update_request(request: web.Request) -> web.Response:
    grant = await _dpo(request)
    store = request.app[STORE]
    existing = await store.dpo_requests.get(request.match_info["request_id"])
    if existing is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such request")
    require_school(grant, existing["school"])
    body = await read_model(request, RequestUpdate)
    doc = await store.dpo_requests.close(
        existing["_id"], body.status, body.outcome, request.app[CLOCK].now()
    )
    await audit(
        request,
        grant,
        "request.update",
        existing["_id"],
        existing["school"],
        {"status": body.status},
    )
    return _json(doc)


# -- legal holds ------------------------------------------------------------------------


async def place_hold(request: web.Request) -> web.Response:
    grant = await _dpo(request)
    body = await read_model(request, HoldBody)
    store = request.app[STORE]
    if body.kind == "person":
        person = await store.directory.person(body.subject)
        school = person.uai if person else None
    else:
        school = await store.retention.conversation_school(body.subject)
    if school is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"no such {body.kind}")
    require_school(grant, school)
    now = request.app[CLOCK].now()
    if body.until <= now:
        raise ApiError(ErrorCode.INVALID_REQUEST, "until must be in the future")
    doc = await store.holds.place(
        HoldKind(body.kind), body.subject, school, body.reason, body.until, actor_of(grant), now
    )
    await audit(
        request,
        grant,
        "hold.place",
        body.subject,
        school,
        {"hold": doc["_id"], "until": str(body.until)},
    )
    return _json(doc, status=201)


async def list_holds(request: web.Request) -> web.Response:
    grant = await _dpo(request)
    school = _school(request, grant)
    now = request.app[CLOCK].now()
    active_only = request.query.get("all") not in ("1", "true")
    docs = await request.app[STORE].holds.holds(school, now, active_only)
    await audit(request, grant, "hold.list", None, school)
    return _json({"holds": docs})


async def release_hold(request: web.Request) -> web.Response:
    grant = await _dpo(request)
    store = request.app[STORE]
    hold = await store.holds.get(request.match_info["hold_id"])
    if hold is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such hold")
    require_school(grant, hold["school"])
    released = await store.holds.release(hold["_id"], request.app[CLOCK].now())
    if released is None:
        raise ApiError(ErrorCode.CONFLICT, "this hold was already lifted")
    await audit(
        request, grant, "hold.release", hold["subject"], hold["school"], {"hold": hold["_id"]}
    )
    return _json(released)


# -- breach scoping (art. 33), retention dry run ----------------------------------------


async def breach_scope(request: web.Request) -> web.Response:
    grant = await _dpo(request)
    body = await read_model(request, BreachBody)
    store = request.app[STORE]
    origin = Origin(device_id=body.device_id, person_id=body.person_id, school=body.school)
    school = await store.breach.school_of(origin)
    if school is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such device or person")
    require_school(grant, school)
    scope = await store.breach.scope(origin, body.since, body.until)
    target = body.device_id or body.person_id or body.school
    await audit(request, grant, "breach.scope", target, school, {"counts": scope["counts"]})
    return _json({"since": body.since, "until": body.until, **scope})


async def retention_dry_run(request: web.Request) -> web.Response:
    grant = await _dpo(request)
    school = _school(request, grant)
    now = request.app[CLOCK].now()
    plan = await request.app[RETENTION].plan(now, school)
    await audit(request, grant, "retention.dry_run", None, school)
    return _json({"now": now, "school": school, "would_delete": plan})


# -- audit log --------------------------------------------------------------------------


async def audit_entries(request: web.Request) -> web.Response:
    grant = await _dpo(request)
    query = _query(request)
    school = _school(request, grant, query.school)
    store = request.app[STORE]
    targets = None
    if query.target is not None:
        targets = [query.target, *(await store.audit.aliases([query.target]))]
    entries = await store.audit.entries(
        school=school,
        action=query.action,
        targets=targets,
        since=query.since,
        until=query.until,
        after_seq=query.after,
        limit=query.limit,
    )
    await audit(request, grant, "audit.read", None, school, {"returned": len(entries)})
    return _json({"entries": entries})


async def audit_verify(request: web.Request) -> web.Response:
    grant = await _dpo(request)
    school = _school(request, grant)
    result = await request.app[STORE].audit.verify()
    await audit(request, grant, "audit.verify", None, school, {"ok": result.ok})
    return _json(result.as_dict())


# -- directory event (operator) ---------------------------------------------------------


async def person_left(request: web.Request) -> web.Response:
    grant, person = await operator_person(request)
    store = request.app[STORE]
    now: datetime = request.app[CLOCK].now()
    await store.retention.mark_left(person.id, now)
    await audit(request, grant, "person.leave", person.id, person.uai)
    days = request.app[SETTINGS].retention_left_days
    return _json({"person_id": person.id, "left_at": now, "erase_after_days": days})


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/dpo/register", register_json)
    app.router.add_get("/v1/dpo/register.html", register_html)
    app.router.add_get("/v1/dpo/people/{person_id}/export", export_person)
    app.router.add_post("/v1/dpo/people/{person_id}/erase", erase)
    app.router.add_post("/v1/dpo/requests", add_request)
    app.router.add_get("/v1/dpo/requests", list_requests)
    app.router.add_patch("/v1/dpo/requests/{request_id}", update_request)
    app.router.add_post("/v1/dpo/holds", place_hold)
    app.router.add_get("/v1/dpo/holds", list_holds)
    app.router.add_delete("/v1/dpo/holds/{hold_id}", release_hold)
    app.router.add_post("/v1/dpo/breach-scope", breach_scope)
    app.router.add_get("/v1/dpo/retention/dry-run", retention_dry_run)
    app.router.add_get("/v1/dpo/audit", audit_entries)
    app.router.add_get("/v1/dpo/audit/verify", audit_verify)
    app.router.add_post("/v1/admin/people/{person_id}/leave", person_left)
