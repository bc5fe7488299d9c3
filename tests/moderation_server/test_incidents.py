"""Incident controls take effect on every node within seconds (issue 5, "Incident controls").

Two Carnet nodes share one database (``tests.support.servers.two_nodes``):
a control posted on node A is observed on node B, polled with a bounded loop.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

from tests.moderation_server.helpers import (
    Socket,
    answer,
    call,
    create,
    next_of,
    online,
    send,
)
from tests.support.devices import WireDevice
from tests.support.servers import RunningServer, two_nodes

UAI = "9999999D"
POLLS = 100
POLL_SECONDS = 0.1
"""Bounded poll: at most POLLS x POLL_SECONDS (10 s) for a control to reach node B."""


async def _poll_send(
    server: RunningServer, ws: Socket, conversation: str, envelopes: dict[str, bytes], want: str
) -> dict[str, Any]:
    """Send until the answer is ``want`` (an error reason, or ``sent``); bounded."""
    for attempt in range(POLLS):
        client_id = f"poll-{uuid.uuid4().hex[:8]}-{attempt}"
        await send(ws, conversation, client_id, envelopes)
        frame = await answer(ws, client_id)
        if frame.get("reason", frame["type"]) == want:
            return frame
        server.clock.advance(timedelta(seconds=2))  # keeps the sender's rate bucket full
        await asyncio.sleep(POLL_SECONDS)
    raise AssertionError(f"node B never answered {want}")


async def _incident(
    http: aiohttp.ClientSession, server: RunningServer, body: dict[str, Any]
) -> tuple[int, Any]:
    url = f"{server.url}/v1/admin/incidents"
    return await call(http, "POST", url, server.operator_token, {"uai": UAI, **body})


async def test_controls_posted_on_one_node_apply_on_the_other(
    database_uri: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with two_nodes(database_uri, tmp_path) as (node_a, node_b):
        await _two_nodes(node_a, node_b, http)


async def _two_nodes(a: RunningServer, b: RunningServer, http: aiohttp.ClientSession) -> None:
    (teacher, ws_t), (parent, ws_p_a) = await online(http, a, "T001", "R001")
    ws_p = await parent.connect(http, b.ws_url)  # supersedes the node A socket
    conversation = (await create(http, a, teacher, "direct", [parent.person_id]))[1]["id"]
    to_teacher = {teacher.device_id: b"x"}

    # Suspend the school's sending on A: the parent's sends on B are refused.
    status, control = await _incident(http, a, {"action": "suspend_sending", "scope": "school"})
    assert status == 201, control
    error = await _poll_send(b, ws_p, conversation, to_teacher, "sending_suspended")
    assert error["code"] == "not_allowed"
    status, _ = await _incident(http, a, {"action": "lift", "target": control["id"]})
    assert status == 204
    await _poll_send(b, ws_p, conversation, to_teacher, "sent")

    # A second device enrolled through B: the teacher's device on A is told.
    status, code = await call(
        http, "POST", f"{b.url}/v1/admin/people/{teacher.person_id}/enrolment-codes",
        b.operator_token, {},
    )  # fmt: skip
    assert status == 201, code
    second = WireDevice()
    await second.enrol(http, b.url, code["code"])
    notice = await next_of(ws_t, "notice")
    assert (notice["kind"], notice["device_id"]) == ("new_device", second.device_id)

    # Log out every device of the school from A: B closes the parent's socket (4003)
    # and refuses its session token; a new login after the control works.
    status, _ = await _incident(http, a, {"action": "logout_all"})
    assert status == 201
    for _ in range(POLLS):
        msg = await ws_p.receive(timeout=10)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            break
    assert msg.data == 4003, msg
    status, body = await call(http, "GET", f"{b.url}/v1/directory", parent)
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    b.clock.advance(timedelta(seconds=1))  # a login after the control is valid again
    ws_again = await parent.connect(http, b.ws_url)
    assert (await call(http, "GET", f"{b.url}/v1/directory", parent))[0] == 200
    for ws in (ws_t, ws_p_a, ws_again):
        await ws.close()


async def test_class_role_and_pupil_closures(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    (teacher, ws_t), (director, ws_d), (pupil, ws_e) = await online(
        http, server, "T001", "D001", "E001"
    )
    _, group = await create(http, server, teacher, "group", [director.person_id, pupil.person_id])
    from_pupil = {teacher.device_id: b"t", director.device_id: b"d"}
    from_teacher = {pupil.device_id: b"p", director.device_id: b"d"}

    async def outcome(ws: Socket, envelopes: dict[str, bytes]) -> str:
        client_id = uuid.uuid4().hex[:10]
        await send(ws, group["id"], client_id, envelopes)
        frame = await answer(ws, client_id)
        return str(frame.get("reason", frame["type"]))

    url = f"{server.url}/v1/admin/incidents"
    table = [
        ({"action": "suspend_sending", "scope": "class", "target": f"{UAI}/5e B"},
         "sending_suspended", "sent"),
        ({"action": "suspend_sending", "scope": "role", "target": "teacher"},
         "sent", "sending_suspended"),
        ({"action": "close_pupils"}, "messaging_closed", "sent"),
    ]  # fmt: skip
    for control, pupil_gets, teacher_gets in table:
        status, body = await call(http, "POST", url, director, {"uai": UAI, **control})
        assert status == 201, body
        assert await outcome(ws_e, from_pupil) == pupil_gets, control
        assert await outcome(ws_t, from_teacher) == teacher_gets, control
        lift = {"action": "reopen_pupils"} if control["action"] == "close_pupils" else {
            "action": "lift", "target": body["id"]}  # fmt: skip
        assert (await call(http, "POST", url, director, {"uai": UAI, **lift}))[0] == 204
        assert await outcome(ws_e, from_pupil) == "sent"
    # Only operators and the school's director; every control is audited.
    status, _ = await call(http, "POST", url, teacher, {"uai": UAI, "action": "close_pupils"})
    assert status == 403
    status, body = await call(
        http, "POST", url, director, {"uai": UAI, "action": "suspend_sending", "scope": "class",
                                      "target": "0000000A/6e"},
    )  # fmt: skip
    assert (status, body["error"]["code"]) == (422, "invalid_request")
    entries = await server.store.audit.entries(school=UAI)
    actions = [e["action"] for e in entries if e["action"].startswith("incident.")]
    assert actions.count("incident.suspend_sending") == 2 and "incident.close_pupils" in actions
    for ws in (ws_t, ws_d, ws_e):
        await ws.close()
