"""The aiohttp application: routes, typed state, middleware, shutdown.

Request path (docs/architecture.md): aiohttp → ``error_middleware`` (every
error becomes a documented JSON body) → a handler in ``enrol``, ``admin``,
``ops`` or ``gateway`` → repositories of ``storage.Store``.
"""

from __future__ import annotations

from aiohttp import web

from server import (
    admin,
    attachments_api,
    conversations_api,
    devices_api,
    enrol,
    gateway,
    moderation_api,
    moderation_reports,
    ops,
    receipts_api,
    web_app,
)
from server.background import run_services
from server.bridge import setup as setup_bridge
from server.change_feed import change_feed_context
from server.clock import Clock, SystemClock
from server.config import Settings
from server.dpo_api import setup as setup_dpo_api
from server.dpo_scheduler import retention_context
from server.errors import error_middleware
from server.hub import Hub
from server.metrics import Metrics
from server.moderation_incidents import moderation_context
from server.secrets_state import load_server_keys
from server.state import CLOCK, HUB, METRICS, SETTINGS, STORE
from storage.database import Store


def create_app(settings: Settings, store: Store, clock: Clock | None = None) -> web.Application:
    """Build the application around an open store (the caller closes the store).

    Args:
        settings: validated configuration.
        store: the repositories.
        clock: the time source; tests inject a frozen one.
    """
    app = web.Application(
        middlewares=[error_middleware], client_max_size=settings.max_request_bytes
    )
    app[SETTINGS] = settings
    app[STORE] = store
    app[CLOCK] = clock or SystemClock()
    app[METRICS] = Metrics()
    app[HUB] = Hub()
    app.cleanup_ctx.append(load_server_keys)
    app.cleanup_ctx.append(retention_context)
    app.cleanup_ctx.append(change_feed_context)  # before those that subscribe to it
    app.cleanup_ctx.append(moderation_context)
    app.cleanup_ctx.append(run_services)
    setup_bridge(app)  # its cleanup_ctx needs the services: after run_services
    ops.setup(app)
    devices_api.setup(app)
    conversations_api.setup(app)
    receipts_api.setup(app)
    moderation_api.setup(app)
    moderation_reports.setup(app)
    attachments_api.setup(app)
    enrol.setup(app)
    admin.setup(app)
    setup_dpo_api(app)
    gateway.setup(app)
    web_app.setup(app)
    return app
