"""The retention scheduler's life cycle inside the server (a ``cleanup_ctx``).

At start the scheduler is built and put on the app (``RETENTION``, so the
DPO API's dry run and tests reach it); when ``retention_scheduler`` is on,
one task runs :meth:`RetentionScheduler.serve` until the app shuts down,
then it is stopped and awaited: it never outlives the app.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from server.retention_jobs import RetentionScheduler
from server.state import CLOCK, METRICS, RETENTION, SETTINGS, STORE


async def retention_context(app: web.Application) -> AsyncIterator[None]:
    scheduler = RetentionScheduler(app[STORE], app[SETTINGS], app[CLOCK], app[METRICS])
    app[RETENTION] = scheduler
    if not app[SETTINGS].retention_scheduler:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.serve(stop), name="retention-scheduler")
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=30)
