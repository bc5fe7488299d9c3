"""``GET /v1/ws``: the WebSocket gateway (docs/protocol.md).

The Origin check happens before the upgrade: a browser page of a foreign
origin gets ``403`` and no WebSocket (cross-site WebSocket hijacking). Clients
that are not browsers send no Origin and are let through: they prove who they
are with the device's signature anyway. permessage-deflate is off (ciphertext
does not compress and it costs ~8x memory per connection, docs/security.md).
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets

from aiohttp import WSCloseCode, web

from protocol import ErrorCode
from server.config import Settings
from server.connection import DeviceConnection
from server.errors import ApiError
from server.services import SERVICES
from server.state import SETTINGS

CONNECTIONS = web.AppKey("connections", set[DeviceConnection])
DRAIN_SECONDS = 5.0
NONCE_BYTES = 32


async def websocket(request: web.Request) -> web.StreamResponse:
    app = request.app
    settings = app[SETTINGS]
    if not _transport_is_safe(request, settings):
        raise ApiError(ErrorCode.FORBIDDEN, "connect with wss:// (TLS)")
    origin = request.headers.get("Origin")
    if origin is not None and origin.rstrip("/") not in settings.origins:
        raise ApiError(ErrorCode.FORBIDDEN, "this origin may not open a WebSocket here")
    ws = web.WebSocketResponse(
        heartbeat=settings.heartbeat_seconds,
        max_msg_size=settings.max_frame_bytes,
        compress=False,
    )
    await ws.prepare(request)
    connection = DeviceConnection(
        ws,
        app[SERVICES],
        nonce=secrets.token_bytes(NONCE_BYTES),
        transport=request.transport,
    )
    app[CONNECTIONS].add(connection)
    try:
        await connection.run()
    finally:
        app[CONNECTIONS].discard(connection)
        if not ws.closed:
            await ws.close()
    return ws


def _transport_is_safe(request: web.Request, settings: Settings) -> bool:
    """TLS, or a loopback client, or a trusted proxy that terminated TLS
    (docs/operations.md, "TLS"); ``allow_plain_websocket`` lifts the rule."""
    if request.secure or settings.allow_plain_websocket:
        return True
    if settings.trusted_proxy_hops:
        return request.headers.get("X-Forwarded-Proto", "").lower() == "https"
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


async def close_all(app: web.Application) -> None:
    """``on_shutdown`` (the listening socket is already closed): every connection
    finishes the frame it is handling, sends its answer, and closes with 1001
    GOING_AWAY; sockets still in the challenge are closed with 1001 directly."""
    live = app[CONNECTIONS]
    connections = list(live)
    await asyncio.gather(*(c.drain(DRAIN_SECONDS) for c in connections))
    for connection in connections:
        await connection.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def setup(app: web.Application) -> None:
    app[CONNECTIONS] = set()
    app.router.add_get("/v1/ws", websocket)
    app.on_shutdown.append(close_all)
