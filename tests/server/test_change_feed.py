"""What the node's change stream lets through, on the real embedded database.

The filter (``server.change_feed.pipeline``) is evaluated by the database for
every write of every node: these tests write one change of each kind that
happens in production and check that exactly the ones a node must follow
arrive, in order.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server.change_feed import LIVE, SHARED, ChangeFeed, pipeline
from storage.database import Store
from storage.embedded import EmbeddedDatabase

NODE, OTHER = "nodeA1", "nodeB2"
END = "end-of-test"


async def followed(store: Store, writes: Any) -> list[tuple[str, str, Any]]:
    """``(collection, operation, _id)`` of what the stream of ``NODE`` returned
    for the changes ``writes(db)`` made, up to a last insert into ``people``."""
    db = store.db
    seen: list[tuple[str, str, Any]] = []
    async with await db.watch(pipeline(NODE), max_await_time_ms=200) as stream:
        await writes(db)
        await db.people.insert_one({"_id": END})
        for _ in range(200):  # bounded: each empty wait is 200 ms
            change = await stream.try_next()
            if change is None:
                continue
            key = (change["ns"]["coll"], change["operationType"], change["documentKey"]["_id"])
            if key[2] == END:
                return seen
            seen.append(key)
    raise AssertionError(f"the last write never came through; seen {seen}")


async def test_only_other_nodes_live_inserts_and_receipt_moves_are_followed(
    store: Store,
) -> None:
    now = datetime.now(UTC)

    async def writes(db: Any) -> None:
        for node, n in ((NODE, 1), (OTHER, 2)):
            await db.messages.insert_one(
                {"_id": f"m{n}", "conversation": "c", "seq": n, "node": node, "created_at": now}
            )
        # delivered: the ciphertext goes (metadata stays), then retention deletes it
        await db.messages.update_many({"conversation": "c"}, {"$unset": {"pairwise": ""}})
        await db.messages.delete_one({"_id": "m1"})
        for node, n in ((NODE, 1), (OTHER, 2)):
            await db.receipts.update_one(
                {"_id": f"r{n}"}, {"$set": {"seq": 1, "node": node, "at": now}}, upsert=True
            )
        await db.receipts.update_one({"_id": "r1"}, {"$set": {"seq": 2, "node": OTHER}})
        await db.receipts.update_one({"_id": "r2"}, {"$set": {"seq": 3, "node": NODE}})
        await db.receipts.delete_one({"_id": "r1"})
        await db.cursors.update_one({"_id": "k"}, {"$set": {"seq": 3}}, upsert=True)
        await db.cursors.update_one({"_id": "k"}, {"$set": {"seq": 4}})
        await db.conversations.insert_one({"_id": "c", "seq": 0})
        await db.conversations.update_one({"_id": "c"}, {"$max": {"seq": 2}})
        await db.heads.update_one({"_id": NODE}, {"$set": {"mark": now}}, upsert=True)

    assert await followed(store, writes) == [
        ("messages", "insert", "m2"),
        ("receipts", "insert", "r2"),
        ("receipts", "update", "r1"),
    ]


async def test_every_shared_change_is_followed_but_this_nodes_own_notices(
    store: Store,
) -> None:
    shared = [c for c in SHARED if c != "notices"]

    async def writes(db: Any) -> None:
        for collection in shared:
            await db[collection].insert_one({"_id": "x", "v": 1})
            await db[collection].update_one({"_id": "x"}, {"$set": {"v": 2}})
            await db[collection].replace_one({"_id": "x"}, {"v": 3})
            await db[collection].delete_one({"_id": "x"})
        await db.notices.insert_one({"_id": "own", "node": NODE, "devices": ["d"]})
        await db.notices.insert_one({"_id": "theirs", "node": OTHER, "devices": ["d"]})
        await db.notices.delete_one({"_id": "theirs"})  # the TTL sweep

    expected = [
        (collection, operation, "x")
        for collection in shared
        for operation in ("insert", "update", "replace", "delete")
    ]
    expected += [("notices", "insert", "theirs"), ("notices", "delete", "theirs")]
    assert await followed(store, writes) == expected


def test_the_followed_collections_are_named_once() -> None:
    assert not set(LIVE) & set(SHARED)


async def test_a_feed_whose_history_is_gone_follows_from_now(tmp_path: Path) -> None:
    database = EmbeddedDatabase(tmp_path, oplog_entries=2000)
    store = await Store.connect(await database.start(), "carnet")
    try:
        async with await store.db.watch(max_await_time_ms=200) as stream:
            await store.db.people.insert_one({"_id": "before", "external_id": "before"})
            for _ in range(50):  # bounded: 10 s
                if await stream.try_next() is not None:
                    break
            else:
                raise AssertionError("the first insert never came through")
            stale = stream.resume_token
        for start in range(0, 5000, 1000):  # the oplog keeps 2,000: "before" is gone
            await store.db.other.insert_many([{"i": i} for i in range(start, start + 1000)])
        feed = ChangeFeed(store, NODE)
        seen: list[str] = []
        opened = asyncio.Event()

        async def on_person(change: dict[str, Any]) -> None:
            seen.append(change["documentKey"]["_id"])

        async def on_open() -> None:
            opened.set()

        feed.subscribe("people", on_person)
        feed.on_open(on_open)
        stop = asyncio.Event()
        task = asyncio.create_task(feed.run(stop, after=stale))
        try:
            await asyncio.wait_for(opened.wait(), 10)
            await store.db.people.insert_one({"_id": "after", "external_id": "after"})
            for _ in range(200):  # bounded: 10 s
                if seen:
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await task
        assert seen == ["after"]
    finally:
        await store.close()
        await database.stop()
