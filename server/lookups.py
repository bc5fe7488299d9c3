"""Short-lived caches of what every send looks up: conversations and device owners.

A send needs its conversation (members, owners, kind) and the owner of each
recipient device. Reading them from the database for every message costs two
round trips per send; these caches keep them for a few seconds per node
(``server.node_cache``: one read per miss, however many sends wait on it).

Staleness is bounded and invalidated at the source: a membership change made
on this node forgets the conversation at once, and every membership event
(written by any node, seen here by the fan-out) forgets it too; device
owners live for ``DEVICE_TTL`` seconds (a revoked device is refused at login
and its connection closed; a send naming it within that time is stored with
a ciphertext nobody fetches). A device that authenticates on this node puts
its own owner in the cache (it was just read), so sends to the devices
connected here read nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from server.node_cache import TtlCache
from storage.conversations import Conversation
from storage.database import Store

CONVERSATION_TTL = 30.0
DEVICE_TTL = 30.0


class Lookups:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._conversations: TtlCache[str, Conversation] = TtlCache(CONVERSATION_TTL, gather=True)
        self._owners: TtlCache[str, str] = TtlCache(DEVICE_TTL, negative=False, gather=True)

    async def conversation(self, conversation_id: str) -> Conversation | None:
        read = self._store.conversations.get_many
        return await self._conversations.get_one(conversation_id, read)

    def forget_conversation(self, conversation_id: str) -> None:
        self._conversations.forget(conversation_id)

    def remember_owner(self, device_id: str, person_id: str) -> None:
        """A device just authenticated here: its owner is known without a read."""
        self._owners.put(device_id, person_id)

    async def device_owners(self, device_ids: Sequence[str]) -> dict[str, str]:
        """Device id → person id for the live devices among ``device_ids``."""
        return await self._owners.get_many(device_ids, self._read_owners)

    async def _read_owners(self, device_ids: list[str]) -> dict[str, str]:
        return await self._store.enrolment.existing_devices(device_ids)
