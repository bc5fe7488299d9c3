"""Conversations read many at once (``ConversationRepository.get_many``), on a real database."""

from __future__ import annotations

from datetime import UTC, datetime

from storage.conversations import ConversationKind
from storage.database import Store

NOW = datetime(2037, 9, 1, 8, 0, tzinfo=UTC)


async def test_get_many_returns_the_existing_ones_as_get_does(store: Store) -> None:
    conversations = store.conversations
    await conversations.create_indexes()
    direct, _ = await conversations.create(
        ConversationKind.DIRECT, "0750001A", "", ["p1", "p2"], [], "p1", NOW
    )
    group, _ = await conversations.create(
        ConversationKind.GROUP, "0750001A", "Sortie", ["p1", "p2", "p3"], ["p1"], "p1", NOW
    )
    found = await conversations.get_many([direct.id, group.id, "c_missing"])
    assert found == {direct.id: await conversations.get(direct.id), group.id: group}
    assert await conversations.get_many([]) == {}
