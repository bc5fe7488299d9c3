"""Helpers for the server-side moderation tests: devices online, REST calls, db counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp

from tests.support.devices import WireDevice, b64, receive
from tests.support.servers import RunningServer

Socket = aiohttp.ClientWebSocketResponse


async def online(
    http: aiohttp.ClientSession, server: RunningServer, *external_ids: str
) -> list[tuple[WireDevice, Socket]]:
    """Enrol one device per demo person and log it in."""
    out = []
    for ext in external_ids:
        device = WireDevice()
        await device.enrol(http, server.url, server.person(ext)["code"])
        out.append((device, await device.connect(http, server.ws_url)))
    return out


def auth(device: WireDevice | str) -> dict[str, str]:
    token = device if isinstance(device, str) else device.session_token
    return {"Authorization": f"Bearer {token}"}


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    who: WireDevice | str,
    body: Any = None,
    **kwargs: Any,
) -> tuple[int, Any]:
    """One REST call; returns the status and the JSON body (None for 204)."""
    async with http.request(method, url, json=body, headers=auth(who), **kwargs) as response:
        data = None if response.status == 204 else await response.json()
        return response.status, data


async def create(
    http: aiohttp.ClientSession,
    server: RunningServer,
    device: WireDevice,
    kind: str,
    members: list[str],
    **extra: Any,
) -> tuple[int, Any]:
    body = {"kind": kind, "members": members, **extra}
    return await call(http, "POST", server.url + "/v1/conversations", device, body)


def refused_with(status: int, body: Any, reason: str) -> bool:
    error = body["error"]
    return status == 403 and error["code"] == "not_allowed" and error["reason"] == reason


async def send(ws: Socket, conversation: str, client_id: str, envelopes: dict[str, bytes],
               commitment: bytes | None = None) -> None:  # fmt: skip
    frame: dict[str, Any] = {
        "type": "send",
        "v": 1,
        "conversation": conversation,
        "client_msg_id": client_id,
        "envelopes": [{"device_id": d, "ciphertext": b64(c)} for d, c in envelopes.items()],
    }
    if commitment is not None:
        frame["commitment"] = b64(commitment)
    await ws.send_json(frame)


async def answer(ws: Socket, client_id: str) -> dict[str, Any]:
    """The ``sent`` or ``error`` frame that answers a send (other frames skipped)."""
    for _ in range(100):
        frame = await receive(ws)
        if (
            frame["type"] in ("sent", "error")
            and frame.get("client_msg_id", frame.get("ref")) == client_id
        ):
            return frame
    raise AssertionError(f"no answer to {client_id}")


async def next_of(ws: Socket, kind: str, limit: int = 100) -> dict[str, Any]:
    for _ in range(limit):
        frame = await receive(ws)
        if frame["type"] == kind:
            return frame
    raise AssertionError(f"no {kind} frame")


async def counts(server: RunningServer) -> dict[str, int]:
    """Documents per collection that a refused action must not change."""
    db = server.store.db
    names = ("conversations", "messages", "blocks", "school_policies", "reports")
    return {name: await db[name].count_documents({}) for name in names}


def paris(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo("Europe/Paris"))
