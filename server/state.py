"""Typed application state: every object the aiohttp app carries has an AppKey."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from crypto import FrankingKeyring
from server.clock import Clock
from server.config import Settings
from server.device_sessions import DeviceSessions
from server.hub import Hub
from server.metrics import Metrics
from server.report_sealing import ReportSeal
from storage.database import Store

if TYPE_CHECKING:  # retention_jobs imports server modules that import this one
    from server.retention_jobs import RetentionScheduler

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", Store)
HUB = web.AppKey("hub", Hub)
FRANKING = web.AppKey("franking", FrankingKeyring)
"""Server franking keys (current + previous), loaded from the database at start."""
SESSIONS = web.AppKey("device_sessions", DeviceSessions)
REPORT_SEAL = web.AppKey("report_seal", ReportSeal)
"""Seals reported message content at rest (server/report_sealing.py)."""
"""Issues and checks device session tokens for the REST API."""
RETENTION: web.AppKey[RetentionScheduler] = web.AppKey("retention")
"""The retention scheduler: ``run_once(now)`` and the dry run ``plan(now)``."""
