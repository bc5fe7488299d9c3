"""Starting and stopping the bridge with the application (a ``cleanup_ctx``).

The bridge is on only when ``CARNET_BRIDGE_KEY`` is set (a clear log line
says so otherwise). It needs the node's services, so its context runs after
``server.background.run_services``; it owns one task (the worker loop, unless
``bridge_interval_seconds`` is 0) and the SMTP reply listener (when
``bridge_listen_port`` and ``bridge_reply_domain`` are set), both stopped
before the services are.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server.bridge.keyring import BridgeKeyring, parse_key
from server.bridge.listener import ReplyHandler, make_protocol
from server.bridge.worker import BridgeWorker
from server.clock import sleep_or_stop
from server.services import SERVICES
from storage.ids import new_id

log = logging.getLogger(__name__)

BRIDGE: web.AppKey[BridgeWorker] = web.AppKey("bridge")
"""The bridge worker of this node; absent when the bridge is off."""
LISTENER: web.AppKey[asyncio.Server] = web.AppKey("bridge_listener")
"""The SMTP reply listener, when this node runs one."""


async def _loop(worker: BridgeWorker, interval: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await worker.safe_run_once()
        await sleep_or_stop(stop, interval)


async def bridge_context(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    settings = services.settings
    if settings.bridge_key is None:
        log.info("SMTP bridge off: CARNET_BRIDGE_KEY is not set (docs/email-bridge.md)")
        yield
        return
    keyring = BridgeKeyring(
        parse_key(settings.bridge_key.get_secret_value()),
        [parse_key(k.get_secret_value()) for k in settings.bridge_previous_keys],
    )
    worker = BridgeWorker(services, keyring, new_id("n", 6))
    app[BRIDGE] = worker
    listener = None
    if settings.bridge_listen_port is not None and settings.bridge_reply_domain:
        handler = ReplyHandler(worker, settings.bridge_reply_domain)
        listener = await asyncio.get_running_loop().create_server(
            lambda: make_protocol(handler), settings.bridge_listen_host, settings.bridge_listen_port
        )
        app[LISTENER] = listener
        log.info("SMTP reply listener on %s:%s", settings.bridge_listen_host,
                 settings.bridge_listen_port)  # fmt: skip
    stop = asyncio.Event()
    task = None
    if settings.bridge_interval_seconds > 0:
        task = asyncio.create_task(
            _loop(worker, settings.bridge_interval_seconds, stop), name="carnet-bridge"
        )
    log.info("SMTP bridge on: relay %s:%s", settings.smtp_host, settings.smtp_port)
    try:
        yield
    finally:
        stop.set()
        if task is not None:
            await task
        if listener is not None:
            listener.close()
            await listener.wait_closed()
