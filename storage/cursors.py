"""Delivery cursors: per device and conversation, the last acknowledged seq.

Documents: ``cursors {_id: "<device>:<conversation>", device_id, conversation,
acked_seq, updated_at}``. A device's delivery state is one small document per
conversation, whatever the number of members: a class message to 100 devices
costs one message write, and catching up is a range read after the cursor.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

Doc = dict[str, Any]


class CursorRepository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._cursors = db["cursors"]

    async def create_indexes(self) -> None:
        await self._cursors.create_index("device_id", name="device")
        await self._cursors.create_index("conversation", name="conversation")

    async def of_device(self, device_id: str) -> dict[str, int]:
        """Conversation id → acknowledged seq for this device."""
        cursor = self._cursors.find({"device_id": device_id}, {"conversation": 1, "acked_seq": 1})
        return {doc["conversation"]: int(doc["acked_seq"]) async for doc in cursor}

    async def of_devices(self, device_ids: list[str]) -> dict[str, dict[str, int]]:
        """:meth:`of_device` for many devices in one query (device → conversation → seq)."""
        found: dict[str, dict[str, int]] = {d: {} for d in device_ids}
        cursor = self._cursors.find(
            {"device_id": {"$in": device_ids}}, {"device_id": 1, "conversation": 1, "acked_seq": 1}
        )
        async for doc in cursor:
            found[doc["device_id"]][doc["conversation"]] = int(doc["acked_seq"])
        return found

    async def advance(self, device_id: str, acks: Mapping[str, int], now: datetime) -> None:
        """Move cursors forward (never back): acks are cumulative per conversation."""
        await self.advance_many({device_id: acks}, now)

    async def advance_many(self, acks: Mapping[str, Mapping[str, int]], now: datetime) -> None:
        """:meth:`advance` for many devices in one round trip (device → conversation → seq)."""
        updates = [
            UpdateOne(
                {"_id": f"{device_id}:{conversation}"},
                {
                    "$max": {"acked_seq": seq},
                    "$set": {"updated_at": now},
                    "$setOnInsert": {"device_id": device_id, "conversation": conversation},
                },
                upsert=True,
            )
            for device_id, conversations in acks.items()
            for conversation, seq in conversations.items()
        ]
        if updates:
            await self._cursors.bulk_write(updates, ordered=False)

    async def of_conversation(self, conversation: str) -> dict[str, int]:
        """Device id → acknowledged seq, for every device with a cursor here."""
        cursor = self._cursors.find(
            {"conversation": conversation}, {"device_id": 1, "acked_seq": 1}
        )
        return {doc["device_id"]: int(doc["acked_seq"]) async for doc in cursor}

    async def forget_device(self, device_id: str) -> None:
        await self._cursors.delete_many({"device_id": device_id})
