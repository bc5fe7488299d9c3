"""Typed application state: every object the aiohttp app carries has an AppKey."""

from __future__ import annotations

from aiohttp import web

from server.clock import Clock
from server.config import Settings
from server.hub import Hub
from server.metrics import Metrics
from storage.database import Store

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", Store)
HUB = web.AppKey("hub", Hub)
