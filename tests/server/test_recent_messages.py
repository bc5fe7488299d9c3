"""The node's ring of recent messages: whole ranges or nothing, bounded (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from server.recent_messages import RecentMessages

NOW = datetime(2037, 9, 1, 8, 0, tzinfo=UTC)


def doc(conversation: str, seq: int, size: int = 10, ttl_days: int = 30) -> dict[str, Any]:
    return {
        "_id": f"m{conversation}{seq}",
        "conversation": conversation,
        "seq": seq,
        "recipients": ["d1"],
        "group": b"x" * size,
        "expires_at": NOW + timedelta(days=ttl_days),
    }


def test_a_range_is_answered_only_when_every_seq_is_held() -> None:
    ring = RecentMessages()
    for seq in (1, 2, 3, 5):
        ring.add(doc("c", seq))
    held = ring.covering("c", 0, 3, NOW)
    assert held is not None and [d["seq"] for d in held] == [1, 2, 3]
    assert ring.covering("c", 2, 5, NOW) is None  # 4 is missing: ask the database
    assert ring.covering("c", 3, 3, NOW) == []
    assert ring.covering("other", 0, 1, NOW) is None
    ring.add(doc("c", 4))  # arrives late through the change feed
    held = ring.covering("c", 2, 5, NOW)
    assert held is not None and [d["seq"] for d in held] == [3, 4, 5]


def test_expired_messages_are_never_answered() -> None:
    ring = RecentMessages()
    ring.add(doc("c", 1, ttl_days=1))
    assert ring.covering("c", 0, 1, NOW) is not None
    assert ring.covering("c", 0, 1, NOW + timedelta(days=1)) is None


def test_memory_is_bounded_per_conversation_and_in_bytes() -> None:
    ring = RecentMessages(per_conversation=3, max_bytes=10_000)
    for seq in range(1, 6):
        ring.add(doc("c", seq))
    assert ring.covering("c", 1, 2, NOW) is None  # 1 and 2 were dropped
    assert ring.covering("c", 2, 5, NOW) is not None
    for name in ("a", "b", "d", "e", "f"):
        ring.add(doc(name, 1, size=3000))
    assert ring.bytes <= 10_000
    assert ring.covering("c", 2, 5, NOW) is None  # least recently written: dropped
    assert ring.covering("f", 0, 1, NOW) is not None
