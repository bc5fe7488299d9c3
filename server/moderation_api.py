"""Moderation REST API: school policy, blocks, incident controls (issue 5).

- ``GET /v1/schools/{uai}/policy``: the current policy document (operator
  token, or a device of one of the school's adults).
- ``PUT /v1/schools/{uai}/policy``: a new revision, JSON or TOML
  (``Content-Type: application/toml``), ``version`` = current + 1 (operator
  token or the director's device); audited ``policy.revise``.
- ``GET /v1/blocks``, ``POST /v1/blocks/{person_id}``,
  ``DELETE /v1/blocks/{person_id}`` (device).
- ``GET /v1/admin/incidents?uai=``, ``POST /v1/admin/incidents`` (operator
  token or the school's director's device); each control audited
  ``incident.<action>``.

Reports and moderators' decisions are in :mod:`server.moderation_reports`.
Refusals: 403 ``not_allowed`` with ``reason`` (docs/moderation.md, "Reason
codes"); an invalid policy: 422 ``invalid_request`` naming each field.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from moderation import ContactPolicy, PolicyError, may_block, parse_policy
from protocol import ErrorCode
from server.auth import require_school, require_token
from server.devices_api import requester
from server.dpo_audit import actor_of
from server.errors import ApiError, read_model
from server.moderation_gate import GATE, refusal
from server.state import CLOCK, STORE
from storage.errors import DuplicateKey
from storage.models import UAI_PATTERN, Person, Role

SCHOOL_ADULTS = frozenset({Role.TEACHER, Role.STAFF, Role.DIRECTOR})
MAX_POLICY_BYTES = 64 * 1024


async def me(request: web.Request) -> Person:
    """The person behind the device session token.

    Raises:
        ApiError: ``unauthorized``, or ``not_found`` if the person is gone.
    """
    return (await requester(request))[1]


def _operator_token(request: web.Request) -> bool:
    _, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip().startswith("carnet_")


async def school_actor(request: web.Request, uai: str, roles: frozenset[Role]) -> str:
    """Who acts on school ``uai``: an operator token (scoped or not) or a device of ``roles``.

    Returns:
        The actor as the audit log names it (``operator:<id>`` or a person id).

    Raises:
        ApiError: ``unauthorized`` or ``forbidden``.
    """
    if _operator_token(request):
        grant = await require_token(request, "operator")
        require_school(grant, uai)
        return actor_of(grant)
    person = await me(request)
    if person.uai != uai or person.role not in roles or person.left_at is not None:
        raise ApiError(ErrorCode.FORBIDDEN, "only this school's director or an operator may")
    return person.id


def _uai(request: web.Request) -> str:
    uai = request.match_info["uai"]
    if len(uai) != 8 or not uai[:7].isdigit() or not uai[7].isupper():
        raise ApiError(ErrorCode.NOT_FOUND, "no such school")
    return uai


# --- policy ---------------------------------------------------------------------------


def _policy_json(policy: ContactPolicy, stored: bool) -> dict[str, Any]:
    return {"policy": json.loads(policy.to_json()), "stored": stored}


async def get_policy(request: web.Request) -> web.Response:
    uai = _uai(request)
    await school_actor(request, uai, SCHOOL_ADULTS)
    if await request.app[STORE].directory.school(uai) is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such school")
    revision = await request.app[STORE].moderation.policies.current(uai)
    policy = await request.app[GATE].policies.get(uai)
    return web.json_response(_policy_json(policy, revision is not None))


async def put_policy(request: web.Request) -> web.Response:
    uai = _uai(request)
    actor = await school_actor(request, uai, frozenset({Role.DIRECTOR}))
    store, gate, now = request.app[STORE], request.app[GATE], request.app[CLOCK].now()
    if await store.directory.school(uai) is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such school")
    raw = await request.read()
    if len(raw) > MAX_POLICY_BYTES:
        raise ApiError(ErrorCode.INVALID_REQUEST, f"a policy is at most {MAX_POLICY_BYTES} bytes")
    fmt = "toml" if "toml" in request.content_type else "json"
    current = await gate.policies.get(uai)
    try:
        text = raw.decode("utf-8")
        new = current.revise(json.loads(parse_policy(text, fmt).to_json()))
    except UnicodeDecodeError:
        raise ApiError(ErrorCode.INVALID_REQUEST, "the policy must be UTF-8") from None
    except PolicyError as exc:
        fields = [{"field": path, "reason": reason} for path, reason in exc.problems]
        raise ApiError(ErrorCode.INVALID_REQUEST, str(exc), fields=fields) from None
    try:
        await store.moderation.policies.add(uai, new.version, new.to_json(), actor, now)
        gate.policies.forget(uai)
    except DuplicateKey:
        raise ApiError(ErrorCode.CONFLICT, "another revision was saved first; reload") from None
    await store.audit.record(actor, "policy.revise", None, uai, {"version": new.version}, now)
    return web.json_response(_policy_json(new, True))


# --- blocks ---------------------------------------------------------------------------


async def list_blocks(request: web.Request) -> web.Response:
    person = await me(request)
    blocked = await request.app[STORE].moderation.blocks.of_blocker(person.id)
    return web.json_response({"blocked": blocked})


async def _target(request: web.Request) -> Person:
    target = await request.app[STORE].directory.person(request.match_info["person_id"])
    if target is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such person")
    return target


async def block(request: web.Request) -> web.Response:
    person = await me(request)
    target = await _target(request)
    gate = request.app[GATE]
    view = await gate.lookup().view([person, target])
    decision = may_block(view, person, target, request.app[CLOCK].now())
    if not decision:
        raise refusal(decision)
    await request.app[STORE].moderation.blocks.add(person.id, target.id, request.app[CLOCK].now())
    request.app[GATE].cache.forget_blockers(target.id)
    return web.Response(status=204)


async def unblock(request: web.Request) -> web.Response:
    person = await me(request)
    await request.app[STORE].moderation.blocks.remove(person.id, request.match_info["person_id"])
    request.app[GATE].cache.forget_blockers(request.match_info["person_id"])
    return web.Response(status=204)


# --- incident controls --------------------------------------------------------------------

Action = Literal["suspend_sending", "close_pupils", "reopen_pupils", "logout_all", "lift"]


class IncidentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Action
    uai: Annotated[str, Field(pattern=UAI_PATTERN)]
    scope: Literal["school", "class", "role"] | None = None
    target: Annotated[str, Field(max_length=60)] = ""
    """``suspend_sending``: the class id (``UAI/name``) or the role; ``lift``: the control id."""
    until: AwareDatetime | None = None


def _check_incident(body: IncidentIn, now: datetime) -> None:
    if body.until is not None and body.until <= now:
        raise ApiError(ErrorCode.INVALID_REQUEST, "until must be in the future")
    if body.action != "suspend_sending":
        return
    if body.scope is None:
        raise ApiError(ErrorCode.INVALID_REQUEST, "suspend_sending needs a scope")
    if body.scope == "class" and not body.target.startswith(body.uai + "/"):
        raise ApiError(ErrorCode.INVALID_REQUEST, "target must be a class of this school")
    participants = {Role.TEACHER, Role.STAFF, Role.DIRECTOR, Role.PUPIL, Role.PARENT}
    if body.scope == "role" and body.target not in participants:
        raise ApiError(ErrorCode.INVALID_REQUEST, "target must be a messaging role")
    if body.scope == "school" and body.target:
        raise ApiError(ErrorCode.INVALID_REQUEST, "a school suspension has no target")


def control_json(doc: dict[str, Any]) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": doc["_id"],
        "uai": doc["uai"],
        "action": doc["action"],
        "scope": doc.get("scope"),
        "target": doc.get("target", ""),
        "until": iso(doc.get("until")),
        "at": iso(doc.get("at")),
    }


async def post_incident(request: web.Request) -> web.Response:
    body = await read_model(request, IncidentIn)
    actor = await school_actor(request, body.uai, frozenset({Role.DIRECTOR}))
    store, controls = request.app[STORE], request.app[GATE].controls
    now = request.app[CLOCK].now()
    _check_incident(body, now)
    if body.action in ("lift", "reopen_pupils"):
        if body.action == "lift":
            found = await store.moderation.incidents.get(body.target)
            if found is None or found["uai"] != body.uai:
                raise ApiError(ErrorCode.NOT_FOUND, "no such control for this school")
            await store.moderation.incidents.lift(body.target, now)
        else:
            await store.moderation.incidents.lift_where(body.uai, "close_pupils", now)
        await controls.reload()
        await store.audit.record(
            actor, f"incident.{body.action}", body.target or None, body.uai, {}, now
        )
        return web.Response(status=204)
    control = {
        "uai": body.uai,
        "action": body.action,
        "scope": body.scope,
        "target": body.target,
        "until": body.until,
        "at": now,
        "by": actor,
    }
    ident = await controls.add(control)
    details = {"scope": body.scope, "target": body.target}
    await store.audit.record(actor, f"incident.{body.action}", ident, body.uai, details, now)
    return web.json_response(control_json({"_id": ident, **control}), status=201)


async def list_incidents(request: web.Request) -> web.Response:
    uai = request.query.get("uai", "")
    if len(uai) != 8:
        raise ApiError(ErrorCode.INVALID_REQUEST, "give ?uai=")
    await school_actor(request, uai, frozenset({Role.DIRECTOR}))
    active = await request.app[STORE].moderation.incidents.active(request.app[CLOCK].now(), uai)
    return web.json_response({"controls": [control_json(c) for c in active]})


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/schools/{uai}/policy", get_policy)
    app.router.add_put("/v1/schools/{uai}/policy", put_policy)
    app.router.add_get("/v1/blocks", list_blocks)
    app.router.add_post("/v1/blocks/{person_id}", block)
    app.router.add_delete("/v1/blocks/{person_id}", unblock)
    app.router.add_get("/v1/admin/incidents", list_incidents)
    app.router.add_post("/v1/admin/incidents", post_incident)
