"""Delivered and read receipts, within what each school allows.

A device's acknowledgements say its person has *received* a conversation up
to a seq; a ``read`` frame says they have *read* it. Each is stored as one
forward-only document per person, conversation and kind, and told to the
members' devices as a ``receipt`` frame: on this node directly, on the other
nodes through the change stream (``server.fanout``). A school that turns a
kind off (``SchoolSettings``) gets nothing stored and nothing sent for it:
the setting bounds what is revealed, not just what is shown.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal

from protocol import ReceiptFrame, dump_frame
from server.clock import Clock
from server.hub import Hub
from server.lookups import Lookups
from storage.database import Store
from storage.models import SchoolSettings

Kind = Literal["delivered", "read"]
SETTINGS_TTL_SECONDS = 30.0
Doc = dict[str, Any]


class Receipts:
    """Stores receipts and tells members; caches school settings briefly."""

    def __init__(self, store: Store, hub: Hub, clock: Clock, node: str, lookups: Lookups) -> None:
        self._store = store
        self._lookups = lookups
        self._hub = hub
        self._clock = clock
        self._node = node
        self._settings: dict[str, tuple[float, SchoolSettings]] = {}

    async def settings(self, uai: str) -> SchoolSettings:
        cached = self._settings.get(uai)
        if cached is not None and time.monotonic() - cached[0] < SETTINGS_TTL_SECONDS:
            return cached[1]
        settings = await self._store.directory.school_settings(uai)
        self._settings[uai] = (time.monotonic(), settings)
        return settings

    def forget_settings(self, uai: str) -> None:
        self._settings.pop(uai, None)

    async def record(self, person_id: str, highest: Mapping[str, int], kind: Kind) -> None:
        """Record that ``person_id`` has received or read conversations up to a seq."""
        now = self._clock.now()
        for conversation_id, seq in highest.items():
            conversation = await self._lookups.conversation(conversation_id)
            if conversation is None or person_id not in conversation.members:
                continue
            if seq > conversation.seq:  # the cached head may be behind: ask the database
                conversation = await self._store.conversations.get(conversation_id)
                if conversation is None or seq > conversation.seq:
                    continue
            settings = await self.settings(conversation.uai)
            allowed = settings.delivered_receipts if kind == "delivered" else settings.read_receipts
            if not allowed:
                continue
            moved = await self._store.receipts.advance(
                conversation_id, person_id, kind, seq, now, self._node
            )
            if moved:
                self.tell(list(conversation.members), conversation_id, person_id, kind, seq, now)

    def tell(
        self, members: list[str], conversation: str, person_id: str, kind: str, seq: int, at: Any
    ) -> None:
        """Send a ``receipt`` frame to the members' devices connected here."""
        frame = ReceiptFrame(
            conversation=conversation,
            seq=seq,
            person_id=person_id,
            kind=kind,
            ts=int(at.timestamp() * 1000),
        )
        text = dump_frame(frame)
        for connection in self._hub.of_people(members):
            connection.notify("receipt", text)
