"""Short-lived caches of what every send looks up: conversations and device owners.

A send needs its conversation (members, owners, kind) and the owner of each
recipient device. Reading them from the database for every message costs two
round trips per send; these caches keep them for a few seconds per node.

Staleness is bounded and invalidated at the source: a membership change made
on this node forgets the conversation at once, and every membership event
(written by any node, seen here by the fan-out) forgets it too; device
owners are forgotten when a person is removed here, and otherwise live for
``DEVICE_TTL`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Generic, TypeVar

from storage.conversations import Conversation
from storage.database import Store

CONVERSATION_TTL = 2.0
DEVICE_TTL = 30.0
MAX_ENTRIES = 100_000

V = TypeVar("V")


class _TtlCache(Generic[V]):
    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._entries: dict[str, tuple[float, V]] = {}

    def get(self, key: str, now: float) -> tuple[bool, V | None]:
        entry = self._entries.get(key)
        if entry is None or now - entry[0] >= self._ttl:
            return False, None
        return True, entry[1]

    def put(self, key: str, value: V, now: float) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()  # a crude bound: a cold cache only costs round trips
        self._entries[key] = (now, value)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)


class Lookups:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._conversations: _TtlCache[Conversation | None] = _TtlCache(CONVERSATION_TTL)
        self._owners: _TtlCache[str] = _TtlCache(DEVICE_TTL)

    async def conversation(self, conversation_id: str) -> Conversation | None:
        now = time.monotonic()
        hit, cached = self._conversations.get(conversation_id, now)
        if hit:
            return cached
        found = await self._store.conversations.get(conversation_id)
        self._conversations.put(conversation_id, found, now)
        return found

    def forget_conversation(self, conversation_id: str) -> None:
        self._conversations.forget(conversation_id)

    async def device_owners(self, device_ids: Sequence[str]) -> dict[str, str]:
        """Device id → person id for the live devices among ``device_ids``."""
        now = time.monotonic()
        owners: dict[str, str] = {}
        missing = []
        for device_id in device_ids:
            hit, person_id = self._owners.get(device_id, now)
            if hit and person_id is not None:
                owners[device_id] = person_id
            else:
                missing.append(device_id)
        if missing:
            found = await self._store.enrolment.existing_devices(missing)
            for device_id, person_id in found.items():
                self._owners.put(device_id, person_id, now)
            owners.update(found)
        return owners

    def forget_devices(self, device_ids: Sequence[str]) -> None:
        for device_id in device_ids:
            self._owners.forget(device_id)
