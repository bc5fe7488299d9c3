"""What a login and its catch-up read, batched across devices or kept in memory.

A device logging in reads its device record, its prekey count, its
conversations and their heads, its cursors, then the messages after each
cursor. One device at a time that is a handful of queries; five thousand
devices coming back at once (docs/performance.md, ``reconnect``) it is the
whole cost of the storm. So, per node:

- device records and cursors of concurrent logins are read together
  (:class:`server.batch_loader.BatchLoader`: one ``$in`` query per batch);
- a person's conversation ids are kept :data:`PEOPLE_TTL` seconds, and
  forgotten when a membership event names them (``server.fanout``);
- a conversation's head is the highest of its published ``seq`` (cached,
  ``server.lookups``) and the last seq this node saw stored
  (``server.recent_senders``): a node sees every stored message, so a head is
  never behind what was stored before the device attached;
- the lowest stored seq of a conversation (expiry) is kept a few seconds;
- recent messages come from the node's ring (``server.recent_messages``)
  when it holds the whole range, else from the database;
- the prekey count told in ``ready`` is a counter kept beside the prekeys
  (``storage.prekeys``), read with the concurrent logins' ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from server.batch_loader import BatchLoader
from server.clock import Clock
from server.lookups import Lookups
from server.node_cache import TtlCache
from server.receipts import Receipts
from server.recent_messages import RecentMessages
from server.recent_senders import RecentSenders
from storage.conversations import Conversation
from storage.database import Store
from storage.messages import StoredMessage, view_for
from storage.models import Device

PEOPLE_TTL = 60.0
FIRST_SEQ_TTL = 5.0


class DeliveryReads:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        lookups: Lookups,
        recent: RecentSenders,
        ring: RecentMessages,
        receipts: Receipts,
    ) -> None:
        self._store = store
        self._clock = clock
        self._lookups = lookups
        self._recent = recent
        self._ring = ring
        self._receipts = receipts
        self._devices: BatchLoader[str, Device | None] = BatchLoader(self._read_devices, None)
        self._cursors: BatchLoader[str, dict[str, int]] = BatchLoader(store.cursors.of_devices, {})
        self._people_loader: BatchLoader[str, tuple[str, ...]] = BatchLoader(
            store.conversations.of_people, ()
        )
        self._people: TtlCache[str, tuple[str, ...]] = TtlCache(PEOPLE_TTL)
        self._first_seq: TtlCache[str, int] = TtlCache(FIRST_SEQ_TTL)
        self._prekeys: BatchLoader[str, int] = BatchLoader(store.prekeys.counts, 0)

    async def run(self, stop: asyncio.Event) -> None:
        """The batch loaders' tasks, until ``stop``."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._devices.run(stop))
            group.create_task(self._cursors.run(stop))
            group.create_task(self._people_loader.run(stop))
            group.create_task(self._prekeys.run(stop))

    # --- login ------------------------------------------------------------------

    async def device(self, device_id: str) -> Device | None:
        """The device record (fresh: read with the concurrent logins' ones)."""
        return await self._devices.load(device_id)

    async def _read_devices(self, ids: list[str]) -> dict[str, Device | None]:
        return dict(await self._store.enrolment.devices(ids))

    async def prekeys_left(self, device_id: str) -> int:
        """One-time prekeys the device has on the server (read with concurrent logins')."""
        return await self._prekeys.load(device_id)

    # --- catch-up ----------------------------------------------------------------

    async def heads(self, person_id: str) -> dict[str, int]:
        """Conversation id → last stored seq, for every live conversation of a person."""
        ids = await self._people.get(person_id, self._people_loader.load) or ()
        heads = {}
        for conversation_id in ids:
            conversation = await self._lookups.conversation(conversation_id)
            if conversation is None or conversation.archived_at is not None:
                continue
            if person_id not in conversation.members:
                continue
            heads[conversation_id] = self.head(conversation)
        return heads

    def head(self, conversation: Conversation) -> int:
        """The conversation's last stored seq as this node knows it."""
        return max(conversation.seq, self._recent.latest(conversation.id))

    def forget_people(self, person_ids: Iterable[str]) -> None:
        """Their conversations changed (a membership event)."""
        for person_id in person_ids:
            self._people.forget(person_id)

    async def cursors(self, device_id: str) -> dict[str, int]:
        """The device's acknowledged seqs: stored, and those this node has not written yet."""
        cursors = dict(await self._cursors.load(device_id))
        for conversation, seq in self._receipts.acked(device_id).items():
            cursors[conversation] = max(seq, cursors.get(conversation, 0))
        return cursors

    async def first_seq(self, conversation: str, head: int) -> int | None:
        """The lowest seq still stored (older ones expired), or None; kept
        :data:`FIRST_SEQ_TTL` seconds (read up to ``head`` on a miss)."""

        async def read(conversation_id: str) -> int | None:
            return await self._store.messages.first_seq(conversation_id, head)

        return await self._first_seq.get(conversation, read)

    async def messages(
        self, device_id: str, conversation: str, after: int, upto: int
    ) -> list[StoredMessage]:
        """Messages for the device with ``after < seq <= upto``, from the ring when it
        holds the whole range, else from the database (callers keep ranges short:
        ``catch_up_page`` seqs)."""
        held = self._ring.covering(conversation, after, upto, self._clock.now())
        if held is None:
            return await self._store.messages.for_device(device_id, conversation, after, upto)
        return [view_for(doc, device_id) for doc in held if device_id in doc["recipients"]]
