"""The sequencer against a real database: group commit across conversations,
seqs from memory arbitrated by the unique index, retried sends, heads published,
and heads a dead node left found again from the messages after its mark.

Two :class:`Sequencer` objects on one database are two nodes (each its own
memory of heads); nothing here is simulated but the network between them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.clock import FrozenClock
from server.metrics import Metrics
from server.sequencer import CLOCK_MARGIN, PUBLISH_CHUNK, Sequencer
from server.write_gaps import WriteGaps
from storage.conversations import ConversationKind
from storage.database import Store
from storage.messages import NewMessage, WriteResult, message_document

NOW = datetime(2037, 9, 1, 8, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
LIFETIME = timedelta(days=30)
Doc = dict[str, Any]


class Node:
    """A sequencer with its own memory, and what it delivered locally."""

    def __init__(
        self,
        store: Store,
        name: str,
        clock: FrozenClock | None = None,
        publish_seconds: float = 5.0,
    ) -> None:
        self.stored: list[Doc] = []
        self.batches = 0
        self.clock = clock or FrozenClock(NOW)
        self.sequencer = Sequencer(
            store, name, LIFETIME, self._on_stored, Metrics(), publish_seconds, self.clock
        )
        self.task: asyncio.Task[None] | None = None

    def _on_stored(self, docs: Sequence[Doc]) -> None:
        self.stored.extend(docs)
        self.batches += 1

    async def __aenter__(self) -> Node:
        self.task = asyncio.create_task(self.sequencer.run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.sequencer.close()
        assert self.task is not None
        await self.task


async def conversation(store: Store) -> str:
    created, _ = await store.conversations.create(
        ConversationKind.GROUP, "9999999D", "g", ["p1", "p2"], ["p1"], "p1", NOW
    )
    return created.id


def message(
    conversation: str, ident: str, sender: str = "d1", created_at: datetime = NOW
) -> NewMessage:
    return NewMessage(
        message_id=f"m_{ident}",
        conversation=conversation,
        sender_device=sender,
        sender_person="p1",
        created_at=created_at,
        group_ciphertext=b"opaque",
        group_devices=("d2",),
    )


async def test_concurrent_sends_to_many_conversations_share_one_write(store: Store) -> None:
    conversations = [await conversation(store) for _ in range(20)]
    async with Node(store, "a") as node:
        results = await asyncio.gather(
            *(
                node.sequencer.submit(message(c, f"{c}-{i}"))
                for i in range(5)
                for c in conversations
            )
        )
    assert len(results) == 100
    # Each conversation got 1..5 in the order its sends were queued.
    for c in conversations:
        seqs = [d["seq"] for d in node.stored if d["conversation"] == c]
        assert seqs == [1, 2, 3, 4, 5]
        assert (await store.conversations.seqs([c]))[c] == 5  # the head is published
    # Far fewer writes than conversations: batched across conversations.
    assert node.batches < 20


async def test_a_batch_mixing_known_and_new_conversations_writes_both(store: Store) -> None:
    """The heads read for a batch covers only the conversations the node does not
    know yet: a message to a known one must not be taken for a missing one (it
    was, from the first group commit on, whenever a batch mixed both: after a
    restart, or on a node that did not create the conversation)."""
    known, new = await conversation(store), await conversation(store)
    async with Node(store, "a") as node:
        await node.sequencer.submit(message(known, "first"))  # its head is known now
        results = await asyncio.gather(  # queued in one go: one batch
            node.sequencer.submit(message(known, "second")),
            node.sequencer.submit(message(new, "other")),
        )
    assert [r.seq for r in results] == [2, 1]
    assert node.batches == 2


async def test_two_nodes_with_stale_heads_never_share_a_seq(store: Store) -> None:
    c = await conversation(store)
    async with Node(store, "a") as a, Node(store, "b") as b:
        # Both learn the head (0), then write without seeing each other.
        await a.sequencer.submit(message(c, "a0"))
        await b.sequencer.submit(message(c, "b0"))
        sends = [
            node.sequencer.submit(message(c, f"{name}{i}", sender=name))
            for i in range(1, 30)
            for name, node in (("a", a), ("b", b))
        ]
        results = await asyncio.gather(*sends)
    seqs = [r.seq for r in results]
    stored = [d async for d in store.messages.collection.find({"conversation": c})]
    assert sorted(d["seq"] for d in stored) == list(range(1, 61))  # no gap, no reuse
    assert len(set(seqs)) == len(seqs)
    # Each node's own sends keep their order (a sender's messages are not reordered).
    for name in ("a", "b"):
        mine = sorted((d for d in stored if d["sender_device"] == name), key=lambda d: d["seq"])
        assert [d["_id"] for d in mine] == [f"m_{name}{i}" for i in range(1, 30)]
    assert (await store.conversations.seqs([c]))[c] == 60


async def test_a_retried_send_gets_its_first_seq_and_wastes_none(store: Store) -> None:
    c = await conversation(store)
    async with Node(store, "a") as node:
        first = await node.sequencer.submit(message(c, "x"))
        again, other = await asyncio.gather(
            node.sequencer.submit(message(c, "x")), node.sequencer.submit(message(c, "y"))
        )
    assert again == first and first.seq == 1
    assert other.seq == 2  # the retry's provisional seq was given to the next message
    assert [d["_id"] for d in node.stored] == ["m_x", "m_y"]


async def test_a_send_to_a_missing_conversation_fails_alone(store: Store) -> None:
    c = await conversation(store)
    async with Node(store, "a") as node:
        good, missing = await asyncio.gather(
            node.sequencer.submit(message(c, "ok")),
            node.sequencer.submit(message("c_missing", "lost")),
            return_exceptions=True,
        )
    assert not isinstance(good, BaseException) and good.seq == 1
    assert isinstance(missing, KeyError)
    assert await store.messages.collection.count_documents({}) == 1


class DeadNode:
    def __init__(self, sequencer: Sequencer, task: asyncio.Task[None]) -> None:
        self.sequencer = sequencer
        self.task = task

    async def kill(self) -> None:
        self.task.cancel()  # no close(): nothing more is written, nothing published
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def start_dead(store: Store, name: str, clock: FrozenClock) -> DeadNode:
    """A node that will be killed: it never publishes (its interval is an hour)."""
    sequencer = Sequencer(store, name, LIFETIME, lambda docs: None, Metrics(), 3600.0, clock)
    task = asyncio.create_task(sequencer.run())
    await asyncio.sleep(0)
    return DeadNode(sequencer, task)


async def heads_document(store: Store, node: str) -> Doc | None:
    return await store.db["heads"].find_one({"_id": node})


async def test_heads_a_node_stored_and_never_published_are_published_by_the_next(
    store: Store,
) -> None:
    c, d = await conversation(store), await conversation(store)
    dead = await start_dead(store, "dead", FrozenClock(NOW))
    await asyncio.gather(
        dead.sequencer.submit(message(c, "1")), dead.sequencer.submit(message(d, "2"))
    )
    await dead.sequencer.submit(message(c, "3"))
    await dead.kill()
    assert await store.conversations.seqs([c, d]) == {c: 0, d: 0}
    # Nothing per batch but the messages: the document holds only a mark, written
    # before the first batch and at or before every message of the node.
    document = await heads_document(store, "dead")
    assert document is not None and "heads" not in document
    assert document["mark"] <= NOW

    clock = FrozenClock(NOW)
    fresh = Sequencer(store, "fresh", LIFETIME, lambda docs: None, Metrics(), clock=clock)
    await fresh.repair(NOW)
    assert await store.conversations.seqs([c, d]) == {c: 2, d: 1}
    clock.advance(timedelta(hours=1))
    await fresh.repair(NOW + timedelta(hours=1))  # silent for long: its document goes
    assert await store.heads.all() == []


async def test_a_message_older_than_the_mark_lowers_it_before_it_is_written(
    store: Store,
) -> None:
    c = await conversation(store)
    dead = await start_dead(store, "dead", FrozenClock(LATER))
    await dead.sequencer.submit(message(c, "on-time", created_at=LATER))
    assert (await store.heads.all())[0].mark == LATER - CLOCK_MARGIN
    # Created an hour before it reached the sequencer (say, a slow moderation read).
    await dead.sequencer.submit(message(c, "late", created_at=NOW))
    await dead.kill()
    assert (await store.heads.all())[0].mark == NOW - CLOCK_MARGIN

    fresh = Sequencer(
        store, "fresh", LIFETIME, lambda docs: None, Metrics(), clock=FrozenClock(LATER)
    )
    await fresh.repair(NOW)
    assert (await store.conversations.seqs([c]))[c] == 2


async def test_repair_reads_only_the_messages_created_from_the_oldest_mark_on(
    store: Store,
) -> None:
    old, new = await conversation(store), await conversation(store)
    # Stored a day ago and never published (as if): before every mark, not read.
    gone = NewMessage("m_gone", old, "d1", "p1", NOW - timedelta(days=1))
    await store.messages.insert_ordered(
        [message_document(gone, 3, "gone", gone.created_at + LIFETIME)]
    )
    async with Node(store, "a") as node:
        await node.sequencer.submit(message(new, "x"))
    # Closed: published, and its mark moved up to its clock (less the margin).
    [marked] = await store.heads.all()
    assert marked.mark == NOW - CLOCK_MARGIN and marked.lifetime == LIFETIME
    assert marked.expires_from is not None
    assert await store.messages.heads_since(marked.expires_from) == {new: 1}

    fresh = Sequencer(
        store, "fresh", LIFETIME, lambda docs: None, Metrics(), clock=FrozenClock(LATER)
    )
    await fresh.repair(NOW)
    assert await store.conversations.seqs([old, new]) == {old: 0, new: 1}


async def test_a_previous_version_heads_map_is_published_then_removed(store: Store) -> None:
    c, d, e = await conversation(store), await conversation(store), await conversation(store)
    heads = store.db["heads"]
    # Written by nodes of the previous version: one alive, one silent for long.
    await heads.insert_one({"_id": "old", "heads": {c: 4, d: 2}, "updated_at": NOW})
    await heads.insert_one(
        {"_id": "older", "heads": {e: 7}, "updated_at": NOW - timedelta(hours=1)}
    )

    fresh = Sequencer(
        store, "fresh", LIFETIME, lambda docs: None, Metrics(), clock=FrozenClock(NOW)
    )
    await fresh.repair(NOW)
    assert await store.conversations.seqs([c, d, e]) == {c: 4, d: 2, e: 7}
    assert await heads.find_one({"_id": "older"}) is None
    old = await heads.find_one({"_id": "old"})
    assert old is not None and old["heads"] == {}  # published: not again


async def test_the_mark_stays_before_a_message_queued_during_the_publication(
    store: Store,
) -> None:
    c = await conversation(store)
    async with Node(store, "a", FrozenClock(LATER), publish_seconds=0.0) as node:
        sequencer = node.sequencer
        first = sequencer.enqueue(message(c, "first", created_at=LATER))
        while sequencer._pending:  # noqa: SLF001 - until the writer holds the batch
            await asyncio.sleep(0)
        # Queued while "first" is written, so during its publication; created long
        # before (and never written: its conversation does not exist).
        queued = sequencer.enqueue(message("c_missing", "queued", created_at=NOW))
        await first
        with pytest.raises(KeyError):
            await queued
    assert (await store.conversations.seqs([c]))[c] == 1  # "first" was published
    [marked] = await store.heads.all()
    assert marked.mark is not None and marked.mark <= NOW


async def test_a_running_node_publishes_heads_and_moves_its_mark(store: Store) -> None:
    c = await conversation(store)
    clock = FrozenClock(NOW)
    async with Node(store, "a", clock) as node:
        node.sequencer._publish_seconds = 0.05  # noqa: SLF001 - a short interval for the test
        await node.sequencer.submit(message(c, "x"))
        clock.advance(timedelta(minutes=1))
        moved = NOW + timedelta(minutes=1) - CLOCK_MARGIN
        for _ in range(100):  # bounded: 5 s
            document = await heads_document(store, "a")
            if document is not None and document["mark"] == moved:
                break
            await asyncio.sleep(0.05)
        assert document is not None and document["mark"] == moved  # moved once published
        assert "heads" not in document
        assert (await store.conversations.seqs([c]))[c] == 1


async def test_background_writers_wait_while_messages_wait(store: Store) -> None:
    """The sequencer closes the write gap when a message is queued and opens it
    only once nothing waits (server.write_gaps: purge and flush go in between)."""
    c = await conversation(store)
    gaps = WriteGaps()
    sequencer = Sequencer(
        store, "a", LIFETIME, lambda docs: None, Metrics(), clock=FrozenClock(NOW), gaps=gaps
    )
    task = asyncio.create_task(sequencer.run())
    await asyncio.sleep(0)
    try:
        written = sequencer.enqueue(message(c, "x"))
        assert not gaps.open  # a message waits: background writers hold back
        await written
        assert await gaps.wait(5.0)  # drained: the gap opens
    finally:
        sequencer.close()
        await task


async def test_a_message_waiting_when_heads_fall_due_is_written_before_any_of_them(
    store: Store,
) -> None:
    """Group commits first: a publication goes a chunk at a time when no message
    waits (server.write_gaps), so a message queued as heads fall due is not held
    behind them; the heads are all published afterwards."""
    conversations = [await conversation(store) for _ in range(3 * PUBLISH_CHUNK)]
    late = await conversation(store)
    queued: list[asyncio.Future[WriteResult]] = []

    def on_stored(docs: Sequence[Doc]) -> None:
        if not queued:  # heads are due from now on (publish_seconds=0): a message comes
            queued.append(sequencer.enqueue(message(late, "late")))

    sequencer = Sequencer(store, "a", LIFETIME, on_stored, Metrics(), 0.0, FrozenClock(NOW))
    task = asyncio.create_task(sequencer.run())
    try:
        await asyncio.gather(*(sequencer.submit(message(c, c)) for c in conversations))
        await queued[0]
    finally:
        sequencer.close()
        await task
    names = {f"{store.db.name}.messages", f"{store.db.name}.conversations"}
    writes = [
        (entry["ns"].rpartition(".")[2], entry["op"], entry["o"].get("_id"))
        async for entry in store.client["local"]["oplog.rs"].find({"ns": {"$in": sorted(names)}})
        if entry["op"] in ("i", "u")
    ]
    late_written = writes.index(("messages", "i", "m_late"))
    published = [
        n for n, (name, op, _) in enumerate(writes) if (name, op) == ("conversations", "u")
    ]
    assert published and late_written < published[0]
    heads = await store.conversations.seqs([*conversations, late])
    assert heads == {c: 1 for c in [*conversations, late]}


async def test_a_commit_waits_for_the_background_command_under_way(store: Store) -> None:
    """The database runs one command at a time: a commit sent while a background
    chunk is being written would only wait inside it (server.write_gaps turns)."""
    c = await conversation(store)
    gaps = WriteGaps()
    events: list[str] = []
    sequencer = Sequencer(
        store,
        "a",
        LIFETIME,
        lambda docs: events.append("stored"),
        Metrics(),
        clock=FrozenClock(NOW),
        gaps=gaps,
    )
    task = asyncio.create_task(sequencer.run())
    await asyncio.sleep(0)
    try:
        async with gaps.turn(0.0):  # in a gap: the turn begins at once
            written = sequencer.enqueue(message(c, "x"))
            await asyncio.sleep(0.05)  # under TURN_LIMIT; a commit takes a few ms
            events.append("turn over")
        await written
    finally:
        sequencer.close()
        await task
    assert events == ["turn over", "stored"]
