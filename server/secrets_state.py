"""Server keys loaded at start-up into typed app state (franking, device sessions).

Loaded in a ``cleanup_ctx`` so that every node reads the keys the database
holds (the first node to start creates them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from crypto import FrankingKeyring, ServerFrankingKey
from server import device_sessions, report_sealing
from server.device_sessions import DeviceSessions
from server.report_sealing import ReportSeal
from server.state import CLOCK, FRANKING, REPORT_SEAL, SESSIONS, STORE

FRANKING_PURPOSE = "franking"


async def load_server_keys(app: web.Application) -> AsyncIterator[None]:
    store, now = app[STORE], app[CLOCK].now()
    franking = await store.server_keys.active(FRANKING_PURPOSE, now)
    keys = [ServerFrankingKey(k.key_id, k.secret) for k in franking]
    app[FRANKING] = FrankingKeyring(keys[0], keys[1:])
    app[SESSIONS] = DeviceSessions(await store.server_keys.active(device_sessions.PURPOSE, now))
    app[REPORT_SEAL] = ReportSeal(await store.server_keys.active(report_sealing.PURPOSE, now))
    yield
