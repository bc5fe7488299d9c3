"""The sequencer against a real database: group commit across conversations,
seqs from memory arbitrated by the unique index, retried sends, heads published.

Two :class:`Sequencer` objects on one database are two nodes (each its own
memory of heads); nothing here is simulated but the network between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.metrics import Metrics
from server.sequencer import Sequencer
from storage.conversations import ConversationKind
from storage.database import Store
from storage.messages import NewMessage

NOW = datetime(2037, 9, 1, 8, 0, tzinfo=UTC)
Doc = dict[str, Any]


@pytest.fixture
async def store(database_uri: str) -> AsyncIterator[Store]:
    name = f"seq_{uuid.uuid4().hex[:12]}"
    store = await Store.connect(database_uri, name)
    try:
        yield store
    finally:
        await store.client.drop_database(name)
        await store.close()


class Node:
    """A sequencer with its own memory, and what it delivered locally."""

    def __init__(self, store: Store, name: str) -> None:
        self.stored: list[Doc] = []
        self.batches = 0
        self.sequencer = Sequencer(store, name, timedelta(days=30), self._on_stored, Metrics())
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


def message(conversation: str, ident: str, sender: str = "d1") -> NewMessage:
    return NewMessage(
        message_id=f"m_{ident}",
        conversation=conversation,
        sender_device=sender,
        sender_person="p1",
        created_at=NOW,
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


async def test_heads_recorded_by_a_node_that_died_are_published_by_the_next(
    store: Store,
) -> None:
    c = await conversation(store)
    dead = Sequencer(store, "dead", timedelta(days=30), lambda docs: None, Metrics(), 3600.0)
    task = asyncio.create_task(dead.run())
    await asyncio.sleep(0)
    await dead.submit(message(c, "before-crash"))
    task.cancel()  # killed: it never published (its interval is an hour)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert (await store.conversations.seqs([c]))[c] == 0
    assert [n.heads for n in await store.heads.all()] == [{c: 1}]
    fresh = Sequencer(store, "fresh", timedelta(days=30), lambda docs: None, Metrics())
    await fresh.repair(NOW)
    assert (await store.conversations.seqs([c]))[c] == 1
    await fresh.repair(NOW + timedelta(hours=1))  # silent for long: its document goes
    assert await store.heads.all() == []


async def test_a_running_node_publishes_heads_and_forgets_what_it_published(
    store: Store,
) -> None:
    c = await conversation(store)
    async with Node(store, "a") as node:
        node.sequencer._publish_seconds = 0.05  # noqa: SLF001 - a short interval for the test
        await node.sequencer.submit(message(c, "x"))
        for _ in range(100):  # bounded: 5 s
            if (await store.conversations.seqs([c]))[c] == 1:
                break
            await asyncio.sleep(0.05)
    assert (await store.conversations.seqs([c]))[c] == 1
    assert [n.heads for n in await store.heads.all()] == [{}]
