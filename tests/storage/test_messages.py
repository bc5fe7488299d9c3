"""Message reads without a recipients index, removed devices, and the index migration,
against a real database (``storage.messages``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from server.background import (
    MAX_FLOORS,
    PURGE_FLOOR_PASSES,
    PURGE_PATIENCE,
    PURGE_READ,
    PURGE_RECHECK,
    delete_expired,
    purge_delivered,
    recheck_floors,
)
from server.write_gaps import SLOT_PATIENCE, WriteGaps
from storage.conversations import ConversationKind
from storage.database import Store
from storage.messages import NewMessage, message_document, seq_pages

NOW = datetime(2037, 9, 1, 8, 0, tzinfo=UTC)


async def put(store: Store, conversation: str, seq: int, to: dict[str, bytes]) -> None:
    message = NewMessage(f"m_{conversation}_{seq}", conversation, "d_s", "p_s", NOW, pairwise=to)
    await store.messages.insert_ordered(
        [message_document(message, seq, "n", NOW + timedelta(days=30))]
    )


async def test_a_device_reads_only_its_own_messages_of_a_conversation(store: Store) -> None:
    await put(store, "c1", 1, {"d_a": b"1a", "d_b": b"1b"})
    await put(store, "c1", 2, {"d_b": b"2b"})  # not for d_a
    await put(store, "c1", 3, {"d_a": b"3a"})
    await put(store, "c2", 1, {"d_a": b"other conversation"})
    found = await store.messages.for_device("d_a", "c1", after=0, upto=10)
    assert [(m.seq, m.ciphertext) for m in found] == [(1, b"1a"), (3, b"3a")]
    assert [m.seq for m in await store.messages.for_device("d_a", "c1", 1, 2)] == []
    assert [m.seq for m in await store.messages.for_device("d_b", "c1", 0, 1)] == [1]


async def test_forgetting_devices_removes_them_and_their_ciphertexts_only(store: Store) -> None:
    await put(store, "c1", 1, {"d_a": b"1a", "d_a2": b"1a2", "d_b": b"1b"})
    await put(store, "c2", 1, {"d_a2": b"x"})
    await store.messages.forget_devices(["d_a", "d_a2"])
    docs = {(d["conversation"], d["seq"]): d async for d in store.messages.collection.find({})}
    assert docs[("c1", 1)]["recipients"] == ["d_b"]
    assert docs[("c1", 1)]["pairwise"] == {"d_b": b"1b"}
    assert docs[("c2", 1)]["recipients"] == [] and docs[("c2", 1)].get("pairwise") == {}


async def test_the_previous_indexes_are_dropped_at_start(store: Store) -> None:
    """No multikey index on recipients and no TTL index (docs/performance.md)."""
    collection = store.messages.collection
    await collection.drop_index("expiry")
    await collection.create_index(
        [("recipients", 1), ("conversation", 1), ("seq", 1)], name="recipient_backlog"
    )
    await collection.create_index("expires_at", expireAfterSeconds=0, name="ttl")
    await store.messages.create_indexes()
    indexes = await collection.index_information()
    assert set(indexes) == {"_id_", "conversation_seq", "expiry"}
    assert "expireAfterSeconds" not in indexes["expiry"]


async def test_expired_messages_are_deleted_by_the_nodes_clock(store: Store) -> None:
    await put(store, "c1", 1, {"d_a": b"old"})  # expires at NOW + 30 days
    later = NOW + timedelta(days=30, seconds=1)
    message = NewMessage("m_c1_2", "c1", "d_s", "p_s", later, pairwise={"d_a": b"new"})
    await store.messages.insert_ordered(
        [message_document(message, 2, "n", later + timedelta(days=30))]
    )
    assert await delete_expired(store, NOW + timedelta(days=30)) == 0  # not past yet
    assert await delete_expired(store, later) == 1
    left = [d["seq"] async for d in store.messages.collection.find({})]
    assert left == [2]


async def test_while_commits_keep_coming_an_expiry_chunk_goes_between_two(store: Store) -> None:
    """Its patience over, a background chunk waits for the end of a commit rather
    than going in the middle of one (``server.write_gaps`` turns)."""
    await put(store, "c1", 1, {"d_a": b"old"})
    gaps = WriteGaps()
    gaps.busy()  # a commit in flight, more queued: no lull comes
    deleting = asyncio.create_task(delete_expired(store, NOW + timedelta(days=31), gaps))
    await asyncio.sleep(PURGE_PATIENCE + SLOT_PATIENCE / 2)  # patience over, no commit ended
    assert await store.messages.collection.count_documents({}) == 1
    gaps.offer_slot()  # a commit ended
    assert await asyncio.wait_for(deleting, 10) == 1
    assert await store.messages.collection.count_documents({}) == 0


def test_no_repository_hints_an_index() -> None:
    """SecantusDB walks a hinted index whole (docs/performance.md): never hint()."""
    storage = Path(__file__).resolve().parents[2] / "storage"
    hinted = [p.name for p in storage.glob("*.py") if ".hint(" in p.read_text()]
    assert hinted == []


async def test_the_purge_drops_what_is_delivered_and_reads_only_past_its_floor(
    store: Store,
) -> None:
    created, _ = await store.conversations.create(
        ConversationKind.GROUP, "9999999D", "g", ["p_s", "p_a"], ["p_s"], "p_s", NOW
    )
    c = created.id
    for seq in range(1, 7):
        await put(store, c, seq, {"d_a": f"{seq}".encode(), "d_b": b"x"})
    await store.conversations.raise_seqs({c: 6}, NOW)  # published: what the purge reads up to
    floors: dict[str, int] = {}
    since = NOW - timedelta(hours=1)
    await store.cursors.advance_many({"d_a": {c: 6}, "d_b": {c: 3}}, NOW)
    assert await purge_delivered(store, since, floors=floors) == 3
    assert floors == {c: 3}  # 1-3 hold nothing any more; 4 waits for d_b
    await store.cursors.advance_many({"d_b": {c: 5}}, NOW)
    assert await purge_delivered(store, since, floors=floors) == 2
    assert floors == {c: 5}
    held, _ = await store.messages.undelivered(c, 0, 6)
    assert [m.seq for m in held] == [6]
    # A pass that finds nothing delivered leaves the floor where it was.
    assert await purge_delivered(store, since, floors=floors) == 0
    assert floors == {c: 5}


async def test_a_message_stored_late_below_the_floor_is_purged_after_the_recheck(
    store: Store,
) -> None:
    """Another node took seq 2 before this one stored 3-5, and wrote it after the
    purge had moved its floor past it: the recheck of the floors finds it."""
    created, _ = await store.conversations.create(
        ConversationKind.GROUP, "9999999D", "g", ["p_s", "p_a"], ["p_s"], "p_s", NOW
    )
    c = created.id
    for seq in (1, 3, 4, 5):
        await put(store, c, seq, {"d_a": b"x"})
    await store.conversations.raise_seqs({c: 5}, NOW)
    await store.cursors.advance_many({"d_a": {c: 5}}, NOW)
    floors: dict[str, int] = {}
    since = NOW - timedelta(hours=1)
    assert await purge_delivered(store, since, floors=floors) == 4
    assert floors == {c: 5}
    await put(store, c, 2, {"d_a": b"late"})  # delivered too: d_a's cursor is at 5
    for passes in range(1, PURGE_FLOOR_PASSES):
        recheck_floors(floors, passes)
        assert await purge_delivered(store, since, floors=floors) == 0  # below the floor
    recheck_floors(floors, PURGE_FLOOR_PASSES)
    assert floors == {c: 0}  # 5 - PURGE_RECHECK, at least 0
    assert await purge_delivered(store, since, floors=floors) == 1
    assert await store.messages.undelivered(c, 0, 5) == ([], 5)


def test_floors_are_lowered_every_few_passes_and_forgotten_past_the_bound() -> None:
    floors = {"c1": PURGE_RECHECK + 7, "c2": 3}
    recheck_floors(floors, PURGE_FLOOR_PASSES - 1)
    assert floors == {"c1": PURGE_RECHECK + 7, "c2": 3}
    recheck_floors(floors, 2 * PURGE_FLOOR_PASSES)
    assert floors == {"c1": 7, "c2": 0}
    many = {f"c{n}": 1 for n in range(MAX_FLOORS + 1)}
    recheck_floors(many, 1)
    assert many == {}


async def test_the_purge_reads_a_long_backlog_in_pages_and_stops_its_floor_at_a_waiting_one(
    store: Store,
) -> None:
    """Reads of :data:`PURGE_READ` seqs, one range after another: a backlog longer
    than a page is dropped in one pass; the floor stops below the first message
    still waiting, even when it is on a later page."""
    created, _ = await store.conversations.create(
        ConversationKind.GROUP, "9999999D", "g", ["p_s", "p_a"], ["p_s"], "p_s", NOW
    )
    c = created.id
    total, waiting = 2 * PURGE_READ + 5, PURGE_READ + 10
    docs = [
        message_document(
            NewMessage(f"m_{seq}", c, "d_s", "p_s", NOW, pairwise={"d_a": b"x", "d_b": b"y"}),
            seq,
            "n",
            NOW + timedelta(days=30),
        )
        for seq in range(1, total + 1)
    ]
    await store.messages.insert_ordered(docs)
    await store.conversations.raise_seqs({c: total}, NOW)
    # d_b has everything; d_a everything but `waiting` and what follows.
    await store.cursors.advance_many({"d_a": {c: waiting - 1}, "d_b": {c: total}}, NOW)
    floors: dict[str, int] = {}
    since = NOW - timedelta(hours=1)
    assert await purge_delivered(store, since, floors=floors) == waiting - 1
    assert floors == {c: waiting - 1}
    await store.cursors.advance_many({"d_a": {c: total}}, NOW)
    assert await purge_delivered(store, since, floors=floors) == total - waiting + 1
    assert floors == {c: total}
    assert await store.messages.undelivered(c, 0, total) == ([], total)


async def test_first_and_last_seq_read_bounded_ranges_past_expired_stretches(
    store: Store,
) -> None:
    """The lowest stored seq is found through growing windows (expired ones
    first), the highest above a seq known to be near the head."""
    for seq in (150, 151, 152):  # 1-149 expired
        await put(store, "c1", seq, {"d_a": b"x"})
    await put(store, "c2", 1, {"d_a": b"x"})
    assert await store.messages.first_seq("c1", upto=152) == 150
    assert await store.messages.first_seq("c1", upto=149) is None
    assert await store.messages.first_seq("c2", upto=1) == 1
    assert await store.messages.first_seq("c3", upto=10) is None
    assert await store.messages.last_seq("c1", after=140) == 152
    assert await store.messages.last_seq("c1", after=152) is None
    assert await store.messages.last_seq("c2") == 1


def test_seq_pages_cover_the_range_once_in_order() -> None:
    assert list(seq_pages(0, 5, 2)) == [(0, 2), (2, 4), (4, 5)]
    assert list(seq_pages(3, 3, 2)) == []
    assert list(seq_pages(7, 9, 200)) == [(7, 9)]
