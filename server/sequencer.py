"""Group commit across conversations: sequence numbers and durable writes.

Every message and event goes through the sequencer of the node that received
it. One writer per node takes every pending message, whatever its
conversation, and writes them in one ``insert_many`` (journaled, majority):
while a batch is being written the next one gathers, so N concurrent senders
cost one round trip, not N (docs/performance.md, "Group commit").

Sequence numbers are given from memory. The node keeps, per conversation it
writes to, the last seq it knows to be taken (loaded from the database on
first use, raised by what other nodes write, seen through the change stream).
The unique index ``(conversation, seq)`` of ``messages`` is the arbiter: a
node whose knowledge was stale gets a duplicate-key error, reloads the head
and renumbers what it had not written yet. Documents are written in order,
grouped by conversation, and the write stops at the first error, so a
sender's messages keep their order and a seq is only ever published once its
message is stored (no seq is skipped, none reused after it was seen).

Heads: nothing is written per batch beyond the messages. Every
``publish_seconds`` the node raises the conversations' ``seq`` counters to
what it stored (``$max``, ``bulk_write`` commands of
:data:`PUBLISH_CHUNK` conversations, each written when no message
waits, or after :data:`PUBLISH_PATIENCE` between two batches: on the embedded
database a chunk of ten cost 25–45 ms under load, and a publication written in one
go held every commit behind it for up to 0.9 s, docs/performance.md), then
moves its **mark** in
``heads`` (``storage.heads``): a time at or before the ``created_at`` of
every message it stored but has not published, or may still store (the
queue's oldest, or now, less :data:`CLOCK_MARGIN`). A message older than the
mark lowers it durably before it is written; an idle node moves it up to now
every :data:`IDLE_MARK_SECONDS`, so a restart does not rescan days. A node
starting up publishes, before it serves, the highest stored seq per
conversation of the messages created from the oldest mark on
(:meth:`repair`; an index range, ``expires_at = created_at + lifetime``): a
crash loses no head. The per-batch update of the node's heads that this
replaced cost the embedded database 1.3 ms at 10 conversations, 66 ms at
500, on every commit's critical path. Devices catching up on a running node
read heads from what the node saw stored (``server.delivery_reads``).

Within a node, batches are written one after another, so commit order is seq
order and local delivery (``on_stored``) sees each conversation in order.
:meth:`run` returns only after every accepted write has finished (graceful
shutdown: in-flight durable writes complete, then the store closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import BulkWriteError

from server.clock import Clock, SystemClock
from server.metrics import Metrics
from server.write_gaps import WriteGaps
from storage.database import Store
from storage.messages import DUPLICATE_KEY, NewMessage, WriteResult, message_document

log = logging.getLogger(__name__)

MAX_BATCH = 512
"""Messages written in one round trip at most (bounded BSON size and latency)."""
MAX_STALLED = 8
"""Rounds in a row in which other writers took every seq of ours before the rest fails."""
MAX_HEADS = 100_000
"""Conversations whose head a node remembers (least recently written dropped)."""
SILENT_NODE = timedelta(minutes=10)
"""A node whose heads document was not written for this long is gone: what it
left is published and its document dropped by the next :meth:`Sequencer.repair`
(a live node writes it every :data:`IDLE_MARK_SECONDS` at least)."""
CLOCK_MARGIN = timedelta(seconds=5)
"""Taken off every mark: clock steps between nodes and between a message's
``created_at`` and its arrival in the queue (a message older than the mark
still lowers it before it is written, at the cost of one more update)."""
PUBLISH_CHUNK = 5
"""Conversations whose head one publication command raises. A conversation's
document costs the embedded database more to update than a cursor (its members
are indexed): chunks of ten took 11–26 ms at half load, and the four or five of
a publication, a tenth of a second apart, delayed every batch for half a
second (docs/performance.md)."""
PUBLISH_PATIENCE = 0.1
"""Seconds a publication chunk waits for the queue to empty before it is written
between two batches anyway (``server.write_gaps``: group commits first)."""
IDLE_MARK_SECONDS = 60.0
"""An idle node moves its mark up to now this often, so that a restart's
:meth:`Sequencer.repair` reads only recent messages."""
Doc = dict[str, Any]


class SequencerClosed(Exception):
    """The node is shutting down; the send was not accepted (retry elsewhere)."""


class SeqConflict(Exception):
    """Other writers kept taking this conversation's next seqs: not stored, retry."""


@dataclass
class _Publication:
    """Heads being published a chunk at a time, then the mark that covers the rest."""

    heads: list[tuple[str, int]]
    mark: datetime
    at: datetime
    last: float
    """``time.monotonic()`` of the last chunk written (or of the start)."""

    def overdue(self, now: float) -> bool:
        """Waited :data:`PUBLISH_PATIENCE` for a gap between batches: write a chunk anyway."""
        return now - self.last >= PUBLISH_PATIENCE


@dataclass
class _Pending:
    message: NewMessage
    done: asyncio.Future[WriteResult]
    seq: int = 0


class Sequencer:
    """Assigns seqs and writes messages, batching every conversation together.

    Args:
        store: the repositories.
        node: this node's id, stored on each message (change streams skip our own).
        lifetime: undelivered lifetime (``expires_at = created_at + lifetime``).
        on_stored: called with the stored documents of a batch, each
            conversation's in seq order.
        metrics: store latency and batch sizes.
        publish_seconds: how often stored seqs are published (and the mark moved).
        clock: the time of marks and of :data:`SILENT_NODE` (the messages'
            ``created_at`` come from the server's clock; a mark after one of
            them is lowered before it is written, so any clock is safe).
        gaps: told when messages wait and when none does, for the background
            writers that go between group commits (``server.write_gaps``).
    """

    def __init__(
        self,
        store: Store,
        node: str,
        lifetime: timedelta,
        on_stored: Callable[[Sequence[Doc]], None],
        metrics: Metrics,
        publish_seconds: float = 5.0,
        clock: Clock | None = None,
        gaps: WriteGaps | None = None,
    ) -> None:
        self._store = store
        self._node = node
        self._lifetime = lifetime
        self._on_stored = on_stored
        self._metrics = metrics
        self._pending: list[_Pending] = []
        self._heads: OrderedDict[str, int] = OrderedDict()
        self._unpublished: dict[str, int] = {}
        """Conversation → last stored seq, not yet published."""
        self._publish_seconds = publish_seconds
        self._clock = clock or SystemClock()
        self._mark: datetime | None = None
        """This node's mark as stored (None: not written by this process yet)."""
        self._written_at: datetime | None = None
        """When the last batch's newest message was created (the publication's time)."""
        self._gaps = gaps or WriteGaps()
        self._publication: _Publication | None = None
        """The publication in progress, written a chunk at a time between batches."""
        self._wake = asyncio.Event()
        self._accepting = False
        self._closing = asyncio.Event()

    async def repair(self, now: datetime) -> None:
        """Publish what any node may have stored and not published (it may have
        died first); drop the documents of nodes silent for :data:`SILENT_NODE`.

        One read of the messages from the oldest mark on (every node's, a
        superset), and the heads map of any previous-design document.

        Args:
            now: the server's time, stamped on the counters raised.
        """
        nodes = await self._store.heads.all()
        bounds = [n.expires_from for n in nodes if n.expires_from is not None]
        if bounds:
            stored = await self._store.messages.heads_since(min(bounds))
            await self._store.conversations.raise_seqs(stored, now)
        silent_before = self._clock.now() - SILENT_NODE
        for node in nodes:
            await self._store.conversations.raise_seqs(node.heads, now)
            if node.updated_at < silent_before:
                await self._store.heads.drop(node.node, node.updated_at)
            else:
                await self._store.heads.forget_legacy(node.node, node.heads)

    async def run(self) -> None:
        """Serve writes until :meth:`close`, then finish the accepted ones."""
        self._accepting = True
        published = time.monotonic()
        while True:
            interval = self._publish_seconds if self._unpublished else IDLE_MARK_SECONDS
            due = published + interval - time.monotonic()
            if self._publication is None and due <= 0 and self._publishable():
                self._publication = self._start_publication()
                published = time.monotonic()
            if self._publication is not None and (
                not self._pending or self._publication.overdue(time.monotonic())
            ):
                await self._gaps.turns_over()
                await self._publish_step()
                continue
            if not self._pending:
                if self._closing.is_set():
                    break
                self._gaps.idle()  # background writers may go (server.write_gaps)
                self._wake.clear()
                # Nothing to publish and no mark of ours yet: nothing to time.
                timing = self._unpublished or self._mark is not None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(due, 0.0) if timing else None)
                continue
            await self._gaps.turns_over()  # a background command under way ends first
            await self._write_next()
            self._gaps.offer_slot()  # one that waited long enough goes before the next
        if self._unpublished and self._publication is None:
            self._publication = self._start_publication()
        while self._publication is not None:
            await self._publish_step()

    def close(self) -> None:
        """Stop accepting writes; :meth:`run` returns once the queue is drained."""
        self._accepting = False
        self._closing.set()
        self._wake.set()

    async def submit(self, message: NewMessage) -> WriteResult:
        """Store ``message`` durably with the next seq of its conversation.

        Raises:
            SequencerClosed: the node is shutting down.
            KeyError: the conversation does not exist.
            SeqConflict: other nodes kept winning the next seqs (retry).
            DriverError / DatabaseUnavailable: the write failed; nothing was
                acknowledged and no seq was published.
        """
        return await self.enqueue(message)

    def enqueue(self, message: NewMessage) -> asyncio.Future[WriteResult]:
        """Queue ``message`` now (its place among this node's writes to its
        conversation is fixed by this call) and return the future of its write;
        see :meth:`submit` for errors.

        Raises:
            SequencerClosed: the node is shutting down.
        """
        if not self._accepting:
            raise SequencerClosed
        done: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(message, done))
        self._gaps.busy()
        self._wake.set()
        return done

    def observe(self, conversation: str, seq: int) -> None:
        """Another writer stored ``seq``: later seqs of ours start above it."""
        known = self._heads.get(conversation)
        if known is not None and seq > known:
            self._heads[conversation] = seq

    # --- one batch ------------------------------------------------------------

    async def _write(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            await self._load_heads(batch)
        except Exception as exc:  # every waiter learns of the failure, none is lost
            _fail(batch, exc)
            return
        # Grouped by conversation (stable: each conversation keeps its order).
        todo = sorted((p for p in batch if not p.done.done()), key=lambda p: p.message.conversation)
        if not todo:
            return
        oldest = min(p.message.created_at for p in todo)
        if self._mark is None or oldest < self._mark:
            try:  # before the write: repair must find these messages if we die
                await self._move_mark(self._next_mark(oldest))
            except Exception as exc:
                _fail(todo, exc)
                return
        for pending in todo:
            pending.seq = self._take(pending.message.conversation)
        written: list[tuple[_Pending, Doc]] = []
        retried: list[tuple[_Pending, WriteResult]] = []
        try:
            stalled = 0  # rounds that stored nothing (another writer won the first seq)
            while todo and stalled < MAX_STALLED:
                before = len(written) + len(retried)
                todo = await self._insert(todo, written, retried)
                stalled = 0 if len(written) + len(retried) > before else stalled + 1
            _fail(todo, SeqConflict("other writers kept taking the next seqs"))
        except Exception as exc:
            _fail(todo, exc)
        answers = [(p, _result(doc)) for p, doc in written] + retried
        if not answers:
            return
        for pending, result in answers:  # stored: published next time, whatever follows
            conversation = pending.message.conversation
            self._unpublished[conversation] = max(
                result.seq, self._unpublished.get(conversation, 0)
            )
        self._written_at = max(p.message.created_at for p, _ in answers)
        self._metrics.store_latency.observe(time.perf_counter() - started)
        self._metrics.batch_size.observe(len(written))
        for pending, result in answers:
            if not pending.done.done():
                pending.done.set_result(result)
        try:
            self._on_stored([doc for _, doc in written])
        except Exception:  # delivery must never undo a durable write
            log.exception("local delivery failed after a batch of %d", len(written))

    async def _load_heads(self, batch: list[_Pending]) -> None:
        """Know the head of every conversation in ``batch`` (one read for the unknown)."""
        unknown = {p.message.conversation for p in batch} - self._heads.keys()
        if not unknown:
            return
        found = await self._store.conversations.seqs(sorted(unknown))
        missing = unknown - found.keys()
        for pending in batch:
            if pending.message.conversation in missing:
                pending.done.set_exception(KeyError(pending.message.conversation))
        for conversation, seq in found.items():
            self._remember(conversation, seq)

    def _take(self, conversation: str) -> int:
        seq = self._heads[conversation] + 1
        self._remember(conversation, seq)
        return seq

    def _remember(self, conversation: str, seq: int) -> None:
        self._heads[conversation] = seq
        self._heads.move_to_end(conversation)
        if len(self._heads) > MAX_HEADS:
            self._heads.popitem(last=False)

    async def _insert(
        self,
        todo: list[_Pending],
        written: list[tuple[_Pending, Doc]],
        retried: list[tuple[_Pending, WriteResult]],
    ) -> list[_Pending]:
        """Write ``todo`` in order; returns what is left to write (renumbered)."""
        docs = [
            message_document(p.message, p.seq, self._node, p.message.created_at + self._lifetime)
            for p in todo
        ]
        try:
            await self._store.messages.insert_ordered(docs)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if len(errors) != 1 or errors[0].get("code") != DUPLICATE_KEY:
                raise
            failed_at = int(errors[0]["index"])
        else:
            written.extend(zip(todo, docs, strict=True))
            return []
        written.extend(zip(todo[:failed_at], docs[:failed_at], strict=True))
        failed, rest = todo[failed_at], todo[failed_at + 1 :]
        conversation = failed.message.conversation
        first = await self._store.messages.first_write(failed.message.message_id)
        if first is not None:  # a retried send: answered with what was stored first
            retried.append((failed, first))
            base = failed.seq - 1  # its seq was never published: the next one takes it
        else:  # another writer took this seq: start again above what is stored
            base = await self._reload_head(conversation)
            rest = [failed, *rest]
        for pending in rest:
            if pending.message.conversation == conversation:
                base += 1
                pending.seq = base
        self._remember(conversation, base)
        return rest

    async def _reload_head(self, conversation: str) -> int:
        published = (await self._store.conversations.seqs([conversation])).get(conversation, 0)
        stored = await self._store.messages.last_seq(conversation, after=published)
        return max(stored or 0, published)

    def _publishable(self) -> bool:
        """Heads to publish, or (idle, with a mark of ours) a mark to move up."""
        return bool(self._unpublished) or (not self._pending and self._mark is not None)

    def _start_publication(self) -> _Publication:
        """Take the heads to publish and the mark that will cover what follows them."""
        heads, self._unpublished = self._unpublished, {}
        mark = self._next_mark()  # taken with the snapshot: covers all that follows it
        at = self._written_at if self._written_at is not None else self._clock.now()
        return _Publication(list(heads.items()), mark, at, time.monotonic())

    async def _publish_step(self) -> None:
        """Write the next chunk of the publication in progress, or, once every
        head is published, move the mark (the old mark covers them until then).

        One chunk per call: :meth:`run` calls it when no message waits, or
        when :data:`PUBLISH_PATIENCE` has passed since the last chunk, so a
        publication of many conversations never holds a commit up for more
        than one chunk, and never falls behind for good.
        """
        publication = self._publication
        assert publication is not None  # noqa: S101 - run() only calls it with one
        part = publication.heads[:PUBLISH_CHUNK]
        try:
            if part:
                await self._store.conversations.raise_seqs(dict(part), publication.at)
                del publication.heads[:PUBLISH_CHUNK]
                publication.last = time.monotonic()
                return
            await self._move_mark(publication.mark)
        except Exception as exc:  # found from the old mark by repair, or published next time
            log.warning("conversation heads not published (%s); retried", type(exc).__name__)
            for conversation, seq in publication.heads:
                self._unpublished[conversation] = max(seq, self._unpublished.get(conversation, 0))
        self._publication = None

    async def _write_next(self) -> None:
        """Write the oldest :data:`MAX_BATCH` waiting messages as one batch."""
        batch = self._pending[:MAX_BATCH]
        del self._pending[:MAX_BATCH]
        await self._write(batch)

    def _next_mark(self, oldest: datetime | None = None) -> datetime:
        """At or before every message not yet written: queued, ``oldest`` (the
        batch being written), or still to come (now), less :data:`CLOCK_MARGIN`."""
        candidates = [self._clock.now(), *(p.message.created_at for p in self._pending)]
        if oldest is not None:
            candidates.append(oldest)
        return min(candidates) - CLOCK_MARGIN

    async def _move_mark(self, mark: datetime) -> None:
        try:
            await self._store.heads.mark(self._node, mark, self._lifetime, self._clock.now())
        except Exception:
            if self._mark is not None:  # stored or not, unknown: assume the later one
                self._mark = max(self._mark, mark)
            raise
        self._mark = mark


def _result(doc: Doc) -> WriteResult:
    return WriteResult(doc["seq"], doc["created_at"], doc.get("stamp"))


def _fail(batch: list[_Pending], exc: BaseException) -> None:
    for pending in batch:
        if not pending.done.done():
            pending.done.set_exception(exc)
