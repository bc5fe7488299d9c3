"""One change stream per node, dispatched by collection.

What other nodes write reaches this node through a single MongoDB change
stream on the database: messages and receipts to deliver (``server.fanout``),
incident controls and notices (``server.moderation_incidents``), and changes
to the directory, blocks and policies that this node's caches must forget
(``server.node_cache``). One stream rather than one per concern: every open
stream costs the database a ``getMore`` per write and, with ``updateLookup``,
a read per update (docs/performance.md measured both at a quarter of the
database's time). This stream asks for no lookup: inserts carry their
document, updates their changed fields, and the receipt ``_id``
(``<conversation>:<person>:<kind>``) names what moved.

The stream resumes after a driver error from its last resume token, with a
bounded backoff; every restart is logged. Each time it (re)opens, the
``on_open`` callbacks run (what changed while it was closed is reloaded or
forgotten). When the database no longer holds the oplog from that token
(``ChangeStreamHistoryLost``: a long outage, or a busy database's capped
oplog, ``storage.embedded``), it follows from now: the ``on_open`` callbacks
reload the caches, and devices find other nodes' messages they missed as a
gap in seqs, read from the database. Handlers run one at a time in stream order; one that fails is
logged and the stream goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from pymongo.errors import OperationFailure, PyMongoError

from server.clock import sleep_or_stop
from server.state import STORE
from storage.database import Store
from storage.errors import DatabaseUnavailable, DriverError
from storage.ids import new_id

log = logging.getLogger(__name__)

Change = dict[str, Any]
Handler = Callable[[Change], Awaitable[None]]
Callback = Callable[[], Awaitable[None]]
RETRY_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)
HISTORY_LOST = 286
"""MongoDB's ``ChangeStreamHistoryLost``: the resume token is older than the oplog."""
IDLE_WAIT_MS = 500
"""Longest wait for a change before the ``on_idle`` callbacks run."""

EMPTY_PAUSE = 0.02
"""Seconds before the next ``getMore`` when one came back empty before its wait
was over. SecantusDB answers a waiting ``getMore`` at every write, even one the
filter drops (this node's own messages): at half rate that was one round trip
and one read of the new oplog entries per group commit, ≈ 8 % of the database's
time (docs/performance.md). Other nodes' messages wait at most this long more."""

LIVE = ("messages", "receipts")
"""Written by every node on the hot path: only other nodes' changes are followed."""
SHARED = (
    "incident_controls",
    "notices",
    "people",
    "schools",
    "blocks",
    "school_policies",
)
"""Rarely written; every change is followed (a node's own ones too, but notices)."""


def pipeline(node: str) -> list[dict[str, Any]]:
    """The stream's filter: other nodes' live traffic, and every shared change
    but this node's own notices (which it delivered itself).

    SecantusDB evaluates it in Python for every write of every node, so its
    clauses are ordered for the writes a node makes most, each rejected by the
    first one or two tests: its own inserts (a message, a receipt) fail
    ``fullDocument.node``, the purges and deletions of messages the ``$nor``.
    The ``$or`` written first, as one ``$or`` of three branches, cost 22–28 µs
    per write; a node's own insert now costs 3.5 µs (docs/performance.md).
    """
    return [
        {
            "$match": {
                "fullDocument.node": {"$ne": node},
                "$nor": [{"ns.coll": "messages", "operationType": {"$ne": "insert"}}],
                "$or": [
                    {"operationType": "insert", "ns.coll": {"$in": list(LIVE)}},
                    {
                        "operationType": "update",
                        "ns.coll": "receipts",
                        "updateDescription.updatedFields.node": {"$ne": node},
                    },
                    {"ns.coll": {"$in": list(SHARED)}},
                ],
            }
        }
    ]


class ChangeFeed:
    """The node's change stream; subscribers register before :meth:`run`'s changes arrive.

    Args:
        store: the repositories (the stream is on ``store.db``).
        node: this node's id, written on the live documents it stores.
    """

    def __init__(self, store: Store, node: str) -> None:
        self.store = store
        self.node = node
        self._handlers: dict[str, list[Handler]] = {}
        self._on_open: list[Callback] = []
        self._on_idle: list[Callback] = []

    def subscribe(self, collection: str, handler: Handler) -> None:
        """Call ``handler`` with each followed change of ``collection``."""
        if collection not in LIVE + SHARED:
            raise ValueError(f"{collection} is not followed (change_feed.LIVE, SHARED)")
        self._handlers.setdefault(collection, []).append(handler)

    def on_open(self, callback: Callback) -> None:
        """Run ``callback`` each time the stream (re)opens: changes may have been missed."""
        self._on_open.append(callback)

    def on_idle(self, callback: Callback) -> None:
        """Run ``callback`` whenever no change came for ``IDLE_WAIT_MS``."""
        self._on_idle.append(callback)

    async def run(self, stop: asyncio.Event, *, after: Any = None) -> None:
        """Follow the stream until ``stop`` is set, from the resume token ``after``
        (from now if None)."""
        resume: Any = after
        failures = 0
        while not stop.is_set():
            try:
                async with await self.store.db.watch(
                    pipeline(self.node), resume_after=resume, max_await_time_ms=IDLE_WAIT_MS
                ) as stream:
                    failures = 0
                    await self._run_all(self._on_open)
                    while not stop.is_set() and stream.alive:  # a dead cursor: reopen
                        asked = time.monotonic()
                        change = await stream.try_next()
                        if change is None:
                            await self._run_all(self._on_idle)
                            if time.monotonic() - asked < IDLE_WAIT_MS / 1000:
                                await sleep_or_stop(stop, EMPTY_PAUSE)
                            continue
                        resume = stream.resume_token
                        await self._dispatch(change)
            except PyMongoError as exc:
                if isinstance(exc, OperationFailure) and exc.code == HISTORY_LOST:
                    log.warning("change stream history lost; following from now")
                    resume = None
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                log.warning(
                    "change stream interrupted (%s); resuming in %ss", type(exc).__name__, delay
                )
                await sleep_or_stop(stop, delay)

    async def _dispatch(self, change: Change) -> None:
        for handler in self._handlers.get(change["ns"]["coll"], ()):
            try:
                await handler(change)
            except (DatabaseUnavailable, DriverError, PyMongoError) as exc:
                log.warning("change not applied (%s)", type(exc).__name__)
            except Exception:  # one bad change must not stop the node following others
                log.exception("change handler failed on %s", change["ns"]["coll"])

    async def _run_all(self, callbacks: list[Callback]) -> None:
        for callback in callbacks:
            try:
                await callback()
            except (DatabaseUnavailable, DriverError, PyMongoError) as exc:
                log.warning("change feed callback failed (%s)", type(exc).__name__)


FEED = web.AppKey("change_feed", ChangeFeed)


async def change_feed_context(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: the node's change feed, followed until shutdown (stopped last)."""
    feed = ChangeFeed(app[STORE], new_id("n", 6))
    app[FEED] = feed
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop), name=f"carnet-changes-{feed.node}")
    try:
        yield
    finally:
        stop.set()
        await task
