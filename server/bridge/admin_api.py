"""The bridge's admin endpoints (operator token, audited; docs/email-bridge.md).

- ``POST /v1/admin/people/{person_id}/email-bridge``: mark a guardian email-only
  and create their ``email-bridge`` device (keys held by the bridge).
- ``GET  /v1/admin/schools/{uai}/email-bridge/bounces``: emails the relay
  refused or that failed for good, newest first.
- ``PUT  /v1/admin/schools/{uai}/email-bridge``: ``{"full_content": bool}``,
  the school's opt-in to message content in emails.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from protocol import ErrorCode
from server.auth import require_school, require_token
from server.bridge.runtime import BRIDGE
from server.bridge.worker import BridgeWorker
from server.dpo_audit import audit
from server.errors import ApiError, read_model
from server.state import CLOCK, STORE
from storage.models import Role

OPERATOR = "operator"


class SchoolBridge(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    full_content: bool


def _worker(request: web.Request) -> BridgeWorker:
    worker = request.app.get(BRIDGE)
    if worker is None:
        raise ApiError(ErrorCode.CONFLICT, "the email bridge is off (CARNET_BRIDGE_KEY unset)")
    return worker


async def enable(request: web.Request) -> web.Response:
    grant = await require_token(request, OPERATOR)
    worker = _worker(request)
    person = await request.app[STORE].directory.person(request.match_info["person_id"])
    if person is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such person")
    require_school(grant, person.uai)
    if person.role != Role.PARENT or not person.email or person.left_at is not None:
        raise ApiError(
            ErrorCode.INVALID_REQUEST, "only a current guardian with an email address is email-only"
        )
    device_id, created = await worker.devices.create(person.id, person.uai, person.email)
    if created:
        await audit(request, grant, "email_bridge.enable", person.id, person.uai)
    return web.json_response(
        {"person_id": person.id, "device_id": device_id, "kind": "email-bridge"},
        status=201 if created else 200,
    )


async def bounces(request: web.Request) -> web.Response:
    grant = await require_token(request, OPERATOR)
    uai = request.match_info["uai"]
    require_school(grant, uai)
    found = await request.app[STORE].bridge.bounces(uai)
    return web.json_response(
        {
            "bounces": [
                {"person_id": b["person_id"], "email": b["email"], "status": b["status"],
                 "code": b["code"], "reason": b["reason"], "at": b["at"].isoformat()}
                for b in found
            ]
        }
    )  # fmt: skip


async def school_settings(request: web.Request) -> web.Response:
    grant = await require_token(request, OPERATOR)
    uai = request.match_info["uai"]
    require_school(grant, uai)
    body = await read_model(request, SchoolBridge)
    if await request.app[STORE].directory.school(uai) is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such school")
    await request.app[STORE].bridge.set_full_content(
        uai, body.full_content, request.app[CLOCK].now()
    )
    await audit(
        request, grant, "email_bridge.settings", None, uai, {"full_content": body.full_content}
    )
    return web.json_response({"uai": uai, "full_content": body.full_content})


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/admin/people/{person_id}/email-bridge", enable)
    app.router.add_get("/v1/admin/schools/{uai}/email-bridge/bounces", bounces)
    app.router.add_put("/v1/admin/schools/{uai}/email-bridge", school_settings)
