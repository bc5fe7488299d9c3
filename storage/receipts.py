"""Receipts: how far each person has received and read a conversation, and the
signed acknowledgements of announcements ("mot à signer").

Documents::

    receipts         {_id: "<conversation>:<person>:<kind>", conversation,
                      person_id, kind: delivered|read, seq, at, node}
    acknowledgements {_id: "<conversation>:<seq>:<person>", conversation, seq,
                      message_id, person_id, device_id, signature, at}

A receipt is one document per person, conversation and kind whose ``seq``
only moves forward: "received (or read) everything up to ``seq``". What is
stored is limited to what the school's settings allow (DESIGN.md, receipts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, UpdateOne, WriteConcern
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

Doc = dict[str, Any]


@dataclass(frozen=True)
class ReceiptUpdate:
    """A receipt to move forward: ``person_id`` has ``kind`` the conversation up to ``seq``."""

    conversation: str
    person_id: str
    kind: str
    seq: int


@dataclass(frozen=True)
class Acknowledgement:
    conversation: str
    seq: int
    person_id: str
    device_id: str
    signature: bytes
    at: datetime


class ReceiptRepository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.receipts = db["receipts"]
        self._acks = db.get_collection(
            "acknowledgements", write_concern=WriteConcern(w="majority", j=True)
        )

    async def create_indexes(self) -> None:
        await self.receipts.create_index("conversation", name="conversation")
        await self.receipts.create_index("person_id", name="person")
        await self._acks.create_index(
            [("conversation", ASCENDING), ("seq", ASCENDING)], name="message"
        )
        await self._acks.create_index("person_id", name="person")

    async def advance_many(
        self, updates: Sequence[ReceiptUpdate], now: datetime, node: str
    ) -> None:
        """Move many receipts forward in one round trip (``$max``: never back)."""
        if not updates:
            return
        await self.receipts.bulk_write(
            [
                UpdateOne(
                    {"_id": f"{u.conversation}:{u.person_id}:{u.kind}"},
                    {
                        "$max": {"seq": u.seq},
                        "$set": {"at": now, "node": node},
                        "$setOnInsert": {
                            "conversation": u.conversation,
                            "person_id": u.person_id,
                            "kind": u.kind,
                        },
                    },
                    upsert=True,
                )
                for u in updates
            ],
            ordered=False,
        )

    async def of_conversation(self, conversation: str) -> dict[str, dict[str, int]]:
        """Person id → {kind: seq}."""
        found: dict[str, dict[str, int]] = {}
        async for doc in self.receipts.find({"conversation": conversation}):
            found.setdefault(doc["person_id"], {})[doc["kind"]] = int(doc["seq"])
        return found

    async def acknowledge(self, ack: Acknowledgement, message_id: str) -> bool:
        """Record a signed acknowledgement; False if this person already acknowledged."""
        try:
            await self._acks.insert_one(
                {
                    "_id": f"{ack.conversation}:{ack.seq}:{ack.person_id}",
                    "conversation": ack.conversation,
                    "seq": ack.seq,
                    "message_id": message_id,
                    "person_id": ack.person_id,
                    "device_id": ack.device_id,
                    "signature": ack.signature,
                    "at": ack.at,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def acknowledgements(self, conversation: str, seq: int) -> list[Acknowledgement]:
        cursor = self._acks.find({"conversation": conversation, "seq": seq}).sort("at", ASCENDING)
        return [
            Acknowledgement(
                d["conversation"], int(d["seq"]), d["person_id"], d["device_id"],
                bytes(d["signature"]), d["at"],
            )
            async for d in cursor
        ]  # fmt: skip
