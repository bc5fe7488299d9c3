"""Group commit per conversation: sequence numbers and durable writes.

Every message and event of a conversation goes through the sequencer of the
node that received it. Sends to one conversation that arrive while a write is
in flight are batched into the next one: one ``$inc`` reserves their
sequence numbers, one ``insert_many`` (journaled, majority) stores them, so a
busy class channel costs two round trips per batch, not per message. Within a
node, batches of a conversation are written one after another, so commit
order is seq order and local delivery (``on_stored``) sees messages in order.

Structured concurrency: :meth:`run` owns a TaskGroup; each active
conversation has one writer task in it, which ends when its queue is empty.
:meth:`run` returns only after every accepted write has finished (graceful
shutdown: in-flight durable writes complete, then the store closes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from server.metrics import Metrics
from storage.database import Store
from storage.messages import NewMessage, WriteResult, message_document

log = logging.getLogger(__name__)

MAX_BATCH = 256
Doc = dict[str, Any]


class SequencerClosed(Exception):
    """The node is shutting down; the send was not accepted (retry elsewhere)."""


@dataclass
class _Pending:
    message: NewMessage
    done: asyncio.Future[WriteResult]


class Sequencer:
    """Assigns seqs and writes messages, batching per conversation.

    Args:
        store: the repositories.
        node: this node's id, stored on each message (change streams skip our own).
        lifetime: undelivered lifetime (``expires_at = created_at + lifetime``).
        on_stored: called with the stored documents of a batch, in seq order.
        metrics: store latency and batch sizes.
    """

    def __init__(
        self,
        store: Store,
        node: str,
        lifetime: timedelta,
        on_stored: Callable[[Sequence[Doc]], None],
        metrics: Metrics,
    ) -> None:
        self._store = store
        self._node = node
        self._lifetime = lifetime
        self._on_stored = on_stored
        self._metrics = metrics
        self._queues: dict[str, list[_Pending]] = {}
        self._group: asyncio.TaskGroup | None = None
        self._closing = asyncio.Event()

    async def run(self) -> None:
        """Serve writes until :meth:`close`, then finish the accepted ones."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            await self._closing.wait()
        self._group = None

    def close(self) -> None:
        """Stop accepting writes; :meth:`run` returns once the queues are drained."""
        self._closing.set()

    async def submit(self, message: NewMessage) -> WriteResult:
        """Store ``message`` durably with the next seq of its conversation.

        Raises:
            SequencerClosed: the node is shutting down.
            KeyError: the conversation does not exist.
            DriverError / DatabaseUnavailable: the write failed; nothing was
                acknowledged (the seq it was given stays unused).
        """
        return await self.enqueue(message)

    def enqueue(self, message: NewMessage) -> asyncio.Future[WriteResult]:
        """Queue ``message`` now (its place in its conversation is fixed by this
        call) and return the future of its write; see :meth:`submit` for errors.

        Raises:
            SequencerClosed: the node is shutting down.
        """
        if self._group is None or self._closing.is_set():
            raise SequencerClosed
        done: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        queue = self._queues.get(message.conversation)
        if queue is None:
            self._queues[message.conversation] = [_Pending(message, done)]
            self._group.create_task(self._writer(message.conversation))
        else:
            queue.append(_Pending(message, done))
        return done

    async def _writer(self, conversation: str) -> None:
        queue = self._queues[conversation]
        try:
            while queue:
                batch, queue[:] = queue[:MAX_BATCH], queue[MAX_BATCH:]
                await self._write(conversation, batch)
        finally:
            del self._queues[conversation]

    async def _write(self, conversation: str, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            now: datetime = batch[0].message.created_at
            last = await self._store.conversations.reserve(conversation, len(batch), now)
            first = last - len(batch) + 1
            docs = [
                message_document(
                    p.message, first + i, self._node, p.message.created_at + self._lifetime
                )
                for i, p in enumerate(batch)
            ]
            results = await self._store.messages.insert_batch(docs)
        except Exception as exc:  # every waiter learns of the failure, none is lost
            for p in batch:
                if not p.done.done():
                    p.done.set_exception(exc)
            return
        self._metrics.store_latency.observe(time.perf_counter() - started)
        self._metrics.batch_size.observe(len(batch))
        for p in batch:
            if not p.done.done():
                p.done.set_result(results[p.message.message_id])
        fresh = [d for d in docs if results[d["_id"]].seq == d["seq"]]
        try:
            self._on_stored(fresh)
        except Exception:  # delivery must never undo a durable write
            log.exception("local delivery failed for conversation %s", conversation)
