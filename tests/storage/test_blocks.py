"""Who blocked whom, read for many senders at once (``BlockRepository``), on a real database."""

from __future__ import annotations

from datetime import UTC, datetime

from storage.database import Store

NOW = datetime(2037, 9, 1, 8, 0, tzinfo=UTC)


async def test_blockers_of_many_groups_the_blockers_by_blocked_sender(store: Store) -> None:
    blocks = store.moderation.blocks
    await blocks.create_indexes()
    for blocker, blocked in (("mum", "dad"), ("teacher", "dad"), ("mum", "pupil"), ("x", "y")):
        await blocks.add(blocker, blocked, NOW)
    await blocks.remove("x", "y")
    found = await blocks.blockers_of_many(["dad", "pupil", "y", "nobody"])
    assert {blocked: sorted(blockers) for blocked, blockers in found.items()} == {
        "dad": ["mum", "teacher"],
        "pupil": ["mum"],
    }
    assert await blocks.blockers_of_many([]) == {}
