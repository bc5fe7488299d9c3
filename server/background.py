"""The node's long-lived services: sequencer, change-stream fan-out, ciphertext purge, expiry.

Started by a ``cleanup_ctx`` after the server keys are loaded, stopped after
the WebSockets are closed (aiohttp runs ``on_shutdown`` first): accepted
writes finish, then the change stream stops. One owned task holds a
TaskGroup with every service; nothing else is started in the background.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta

from aiohttp import web

from server.change_feed import FEED
from server.clock import sleep_or_stop
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
from server.write_gaps import SETTLE, WriteGaps, chunks
from storage.conversations import Conversation
from storage.database import Store
from storage.errors import DatabaseUnavailable, DriverError
from storage.messages import Held

log = logging.getLogger(__name__)
PURGE_EVERY = timedelta(seconds=30)

PURGE_SHARE = 0.5
"""At most this share of the purge's wall time is spent writing: it yields the rest."""
PURGE_PATIENCE = 1.0
"""Seconds a purge chunk waits for a gap between group commits (``server.write_gaps``)."""
PURGE_FLOOR_PASSES = 10
"""Passes after which the purge lowers its floors by :data:`PURGE_RECHECK` seqs
(a message another node stored late, below a floor, is not missed for long)."""
PURGE_RECHECK = 1000
"""Seqs below each floor read again every :data:`PURGE_FLOOR_PASSES` passes: far
more than any node stores between taking a seq and writing it."""
MAX_FLOORS = 100_000
PURGE_READ = 100
"""Seqs a purge read covers (an index range, ≈ 5 ms on the embedded database;
an open range ``seq > floor`` with a limit read the whole rest of the
conversation, and ``$exists`` the whole collection: 50–100 ms a read)."""
PURGE_PAGES = 100
"""Reads per conversation and pass at most (the next pass goes on from the floor):
10,000 seqs, more than the busiest conversation stores between two passes."""
PURGE_MAX_LAG = timedelta(minutes=10)
"""Delivered ciphertext older than this is dropped without waiting for a lull
(right after the next commit): under sustained load the purge takes its share
instead of falling behind."""


def delivered_runs(held: Sequence[Held], acked: Mapping[str, int]) -> list[list[Held]]:
    """The messages every recipient device acknowledged, as runs of consecutive ones.

    Args:
        held: The conversation's messages that still hold ciphertext, by seq.
        acked: Device id → acknowledged seq (cursors).

    Returns:
        Maximal runs of ``held`` whose every message is delivered: a run's seq
        range holds no message still waiting for a device (the others in it
        hold no ciphertext), so it can be dropped as one index range.
    """
    runs: list[list[Held]] = []
    current: list[Held] = []
    for message in held:
        if all(acked.get(device, 0) >= message.seq for device in message.recipients):
            current.append(message)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


async def purge_delivered(
    store: Store,
    since: datetime,
    share: float = 1.0,
    gaps: WriteGaps | None = None,
    now: datetime | None = None,
    floors: dict[str, int] | None = None,
) -> int:
    """Drop the ciphertext every recipient device has acknowledged (RGPD art. 5(1)(e)).

    Looks at conversations active since ``since``; returns how many messages
    lost their ciphertext. A message is done when each of its recipients'
    cursors has reached its seq. Drops at most :data:`server.write_gaps.CHUNK`
    messages per command, each in a turn between group commits
    (``server.write_gaps``: a lull, or the end of a commit once
    :data:`PURGE_PATIENCE` has passed, or the end of the next commit for
    messages older than :data:`PURGE_MAX_LAG` at ``now``); with ``share`` < 1, pauses after each
    chunk so that writing takes at most that share of the time. Its reads
    (pages of :data:`PURGE_READ`) wait for a gap too, and with ``floors``
    (conversation → a seq below which nothing holds ciphertext any more, kept
    by the caller between passes) they read only what follows: a
    conversation's purged messages are not read again on every pass.
    """
    overdue = None if now is None else now - PURGE_MAX_LAG
    floors = {} if floors is None else floors
    gaps = gaps or WriteGaps()  # alone: every turn at once
    dropped = 0
    async for conversation in store.conversations.active_since(since):
        dropped += await _purge_conversation(store, conversation, floors, share, gaps, overdue)
    return dropped


async def _purge_conversation(
    store: Store,
    conversation: Conversation,
    floors: dict[str, int],
    share: float,
    gaps: WriteGaps,
    overdue: datetime | None,
) -> int:
    """:func:`purge_delivered` for one conversation: pages of :data:`PURGE_READ`
    seqs from its floor, the floor moved up after each page's drops."""
    dropped = 0
    read_after = floors.get(conversation.id, 0)
    acked: dict[str, int] | None = None
    clear = True  # nothing read so far still waits: the floor follows the pages
    for _ in range(PURGE_PAGES):
        upto = read_after + PURGE_READ  # past the published head too: an empty range
        # Any gap: a read of 100 seqs is short, and under sustained load the
        # drops that follow must be found (PURGE_MAX_LAG).
        async with gaps.turn(PURGE_PATIENCE):
            held, highest = await store.messages.undelivered(conversation.id, read_after, upto)
            if held and acked is None:
                acked = await store.cursors.of_conversation(conversation.id)
        runs = delivered_runs(held, acked) if held and acked is not None else []
        for part in (part for run in runs for part in chunks(run)):
            late = overdue is not None and part[0].created_at < overdue  # no lull to wait for
            async with gaps.turn(0.0 if late else PURGE_PATIENCE, 0.0 if late else SETTLE):
                began = time.monotonic()
                dropped += await store.messages.drop_ciphertext(
                    conversation.id, part[0].seq, part[-1].seq
                )
            if share < 1:
                await asyncio.sleep((time.monotonic() - began) * (1 / share - 1))
        if clear:  # only once dropped: a failed pass leaves the floor
            floor, clear = page_floor(held, runs, highest)
            if floor > floors.get(conversation.id, 0):
                floors[conversation.id] = floor
        if highest < upto and upto >= conversation.seq:
            break  # the range ends past what is stored: nothing follows
        read_after = upto
    return dropped


def page_floor(
    held: Sequence[Held], runs: Sequence[Sequence[Held]], highest: int
) -> tuple[int, bool]:
    """Where a conversation's purge floor stands once a page's delivered ``runs``
    are dropped, and whether the whole page is then clear.

    Args:
        held: The page's messages that held ciphertext, by seq.
        runs: Those of them dropped (:func:`delivered_runs`).
        highest: The highest seq stored in the page's range.

    Returns:
        Just below the first message still waiting (False), or ``highest``
        when none waits (True): below the floor nothing holds ciphertext.
    """
    dropped = {message.seq for run in runs for message in run}
    waiting = next((message.seq for message in held if message.seq not in dropped), None)
    return (highest, True) if waiting is None else (waiting - 1, False)


EXPIRY_ROUNDS = 100
"""Reads of expired messages per pass at most; the next pass goes on."""
EXPIRY_READ = 100
"""Expired message ids read at once (deleted :data:`server.write_gaps.CHUNK` at a time)."""


async def delete_expired(store: Store, now: datetime, gaps: WriteGaps | None = None) -> int:
    """Delete the messages past their undelivered lifetime (RGPD art. 5(1)(e)).

    What a TTL index would do, by the node's clock and between group commits
    (``MessageRepository.create_indexes`` says why there is none). Returns
    how many were deleted.
    """
    deleted = 0
    gaps = gaps or WriteGaps()  # alone: every turn at once
    for _ in range(EXPIRY_ROUNDS):
        found = await store.messages.expired(now, EXPIRY_READ)
        for part in chunks(found):
            async with gaps.turn(PURGE_PATIENCE, SETTLE):
                deleted += await store.messages.delete(part)
        if len(found) < EXPIRY_READ:
            break
    return deleted


def recheck_floors(floors: dict[str, int], passes: int) -> None:
    """Before pass number ``passes``: every :data:`PURGE_FLOOR_PASSES` passes,
    lower each floor by :data:`PURGE_RECHECK` seqs, so that a message another
    node stored late, below a floor, is purged a few passes later; past
    :data:`MAX_FLOORS` conversations, forget them all (memory stays bounded)."""
    if len(floors) > MAX_FLOORS:
        floors.clear()
    elif passes % PURGE_FLOOR_PASSES == 0:
        for conversation_id, floor in floors.items():
            floors[conversation_id] = max(0, floor - PURGE_RECHECK)


async def _purge_loop(
    store: Store, services: Services, gaps: WriteGaps, stop: asyncio.Event
) -> None:
    since = services.clock.now() - PURGE_EVERY
    floors: dict[str, int] = {}
    passes = 0
    while not stop.is_set():
        passes += 1
        recheck_floors(floors, passes)
        await sleep_or_stop(stop, PURGE_EVERY.total_seconds())
        started = services.clock.now()
        try:
            await purge_delivered(store, since - PURGE_EVERY, PURGE_SHARE, gaps, started, floors)
            await delete_expired(store, started, gaps)
            await store.attachments.purge_expired(started)
            since = started
        except (DatabaseUnavailable, DriverError) as exc:
            log.warning("purge of delivered ciphertext failed: %s", type(exc).__name__)


async def run_services(app: web.Application) -> AsyncIterator[None]:
    settings, store, metrics = app[SETTINGS], app[STORE], app[METRICS]
    feed = app[FEED]
    node = feed.node
    lookups = Lookups(store)
    recent, ring, gaps = RecentSenders(), RecentMessages(), WriteGaps()
    receipts = Receipts(
        store, app[HUB], app[CLOCK], node, lookups, recent, settings.ack_flush_seconds, gaps
    )
    reads = DeliveryReads(store, app[CLOCK], lookups, recent, ring, receipts)
    fanout = Fanout(app[HUB], metrics, lookups, recent, ring, reads.forget_people)
    sequencer = Sequencer(
        store,
        node,
        timedelta(days=settings.undelivered_days),
        fanout.deliver,
        metrics,
        clock=app[CLOCK],
        gaps=gaps,
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
            group.create_task(_purge_loop(store, services, gaps, stop))

    await sequencer.repair(app[CLOCK].now())  # heads a dead node recorded, before serving
    task = asyncio.create_task(serve(), name=f"carnet-services-{node}")
    await asyncio.sleep(0)  # let the sequencer open its TaskGroup before requests arrive
    try:
        yield
    finally:
        sequencer.close()
        stop.set()
        await task
