"""Node marks and the messages query that recovers heads from them, against a
real database (``storage.heads``, ``MessageRepository.heads_since``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.database import Store
from storage.messages import NewMessage, message_document

NOW = datetime(2037, 9, 1, 8, 0, tzinfo=UTC)
LIFETIME = timedelta(days=30)


async def stored(store: Store, conversation: str, seq: int, created_at: datetime) -> None:
    message = NewMessage(f"m_{conversation}_{seq}", conversation, "d1", "p1", created_at)
    doc = message_document(message, seq, "n", created_at + LIFETIME)
    await store.messages.insert_ordered([doc])


async def test_heads_since_reads_the_highest_seq_of_recent_messages_only(store: Store) -> None:
    await stored(store, "c_old", 1, NOW - timedelta(days=1))
    await stored(store, "c_old", 2, NOW - timedelta(hours=1))
    await stored(store, "c_a", 4, NOW)
    await stored(store, "c_a", 3, NOW)
    await stored(store, "c_b", 1, NOW + timedelta(seconds=1))

    assert await store.messages.heads_since(NOW + LIFETIME) == {"c_a": 4, "c_b": 1}
    assert await store.messages.heads_since(NOW - timedelta(hours=1) + LIFETIME) == {
        "c_old": 2,
        "c_a": 4,
        "c_b": 1,
    }
    assert await store.messages.heads_since(NOW + timedelta(minutes=1) + LIFETIME) == {}
