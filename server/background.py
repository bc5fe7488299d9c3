"""The node's long-lived services: sequencer, change-stream fan-out, ciphertext purge.

Started by a ``cleanup_ctx`` after the server keys are loaded, stopped after
the WebSockets are closed (aiohttp runs ``on_shutdown`` first): accepted
writes finish, then the change stream stops. One owned task holds a
TaskGroup with every service; nothing else is started in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from aiohttp import web

from server.change_feed import FEED
from server.delivery_reads import DeliveryReads
from server.fanout import Fanout
from server.lookups import Lookups
from server.moderation_gate import GATE
from server.receipts import Receipts
from server.recent_messages import RecentMessages
from server.recent_senders import RecentSenders
from server.sequencer import Sequencer
from server.services import SERVICES, Services
from server.state import CLOCK, FRANKING, HUB, METRICS, SESSIONS, SETTINGS, STORE
from storage.database import Store
from storage.errors import DatabaseUnavailable, DriverError

log = logging.getLogger(__name__)
PURGE_EVERY = timedelta(seconds=30)


PURGE_CHUNK = 100
PURGE_SHARE = 0.5
"""At most this share of the purge's wall time is spent writing: it yields the rest,
so that dropping ciphertext (one updated document per message) never holds up
the group commits of new messages (docs/performance.md)."""


async def purge_delivered(store: Store, since: datetime, share: float = 1.0) -> int:
    """Drop the ciphertext every recipient device has acknowledged (RGPD art. 5(1)(e)).

    Looks at conversations active since ``since``; returns how many messages
    lost their ciphertext. A message is done when each of its recipients'
    cursors has reached its seq. Drops :data:`PURGE_CHUNK` messages at a
    time and, with ``share`` < 1, pauses after each chunk so that writing
    takes at most that share of the time.
    """
    dropped = 0
    async for conversation in store.conversations.active_since(since):
        pending = await store.messages.undelivered(conversation.id)
        if not pending:
            continue
        acked = await store.cursors.of_conversation(conversation.id)
        done = [
            message_id
            for message_id, seq, recipients in pending
            if all(acked.get(device, 0) >= seq for device in recipients)
        ]
        for start in range(0, len(done), PURGE_CHUNK):
            began = time.monotonic()
            dropped += await store.messages.drop_ciphertext(done[start : start + PURGE_CHUNK])
            if share < 1:
                await asyncio.sleep((time.monotonic() - began) * (1 / share - 1))
    return dropped


async def _purge_loop(store: Store, services: Services, stop: asyncio.Event) -> None:
    since = services.clock.now() - PURGE_EVERY
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PURGE_EVERY.total_seconds())
        started = services.clock.now()
        try:
            await purge_delivered(store, since - PURGE_EVERY, PURGE_SHARE)
            await store.attachments.purge_expired(started)
            since = started
        except (DatabaseUnavailable, DriverError) as exc:
            log.warning("purge of delivered ciphertext failed: %s", type(exc).__name__)


async def run_services(app: web.Application) -> AsyncIterator[None]:
    settings, store, metrics = app[SETTINGS], app[STORE], app[METRICS]
    feed = app[FEED]
    node = feed.node
    lookups = Lookups(store)
    recent, ring = RecentSenders(), RecentMessages()
    receipts = Receipts(
        store, app[HUB], app[CLOCK], node, lookups, recent, settings.ack_flush_seconds
    )
    reads = DeliveryReads(store, app[CLOCK], lookups, recent, ring, receipts)
    fanout = Fanout(app[HUB], metrics, lookups, recent, ring, reads.forget_people)
    sequencer = Sequencer(
        store, node, timedelta(days=settings.undelivered_days), fanout.deliver, metrics
    )
    services = Services(
        settings=settings,
        store=store,
        clock=app[CLOCK],
        metrics=metrics,
        hub=app[HUB],
        fanout=fanout,
        sequencer=sequencer,
        receipts=receipts,
        lookups=lookups,
        franking=app[FRANKING],
        sessions=app[SESSIONS],
        gate=app[GATE],
        reads=reads,
    )
    app[SERVICES] = services
    fanout.follow(feed, receipts, sequencer.observe)
    stop = asyncio.Event()

    async def serve() -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(sequencer.run())
            group.create_task(receipts.run(stop))
            group.create_task(reads.run(stop))
            group.create_task(_purge_loop(store, services, stop))

    await sequencer.repair(app[CLOCK].now())  # heads a dead node recorded, before serving
    task = asyncio.create_task(serve(), name=f"carnet-services-{node}")
    await asyncio.sleep(0)  # let the sequencer open its TaskGroup before requests arrive
    try:
        yield
    finally:
        sequencer.close()
        stop.set()
        await task
