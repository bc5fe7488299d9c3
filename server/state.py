"""Typed application state: every object the aiohttp app carries has an AppKey."""

from __future__ import annotations

from aiohttp import web

from crypto import FrankingKeyring
from server.clock import Clock
from server.config import Settings
from server.device_sessions import DeviceSessions
from server.hub import Hub
from server.metrics import Metrics
from storage.database import Store

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", Store)
HUB = web.AppKey("hub", Hub)
FRANKING = web.AppKey("franking", FrankingKeyring)
"""Server franking keys (current + previous), loaded from the database at start."""
SESSIONS = web.AppKey("device_sessions", DeviceSessions)
"""Issues and checks device session tokens for the REST API."""
