"""Envelope queue repository: ciphertext waiting for its device (DESIGN.md, RGPD).

Documents: ``envelopes {_id: "<message id>.<device id>", message_id,
device_id, sender_device, sender_person, ciphertext, created_at, expires_at}``.

Ciphertext is kept only until the recipient device acknowledges it, and never
longer than the undelivered lifetime (TTL index on ``expires_at``). Envelope
ids derive from the message id, itself derived from the sender device and the
client's message id, so a retried send writes nothing twice (idempotence).
Writes use write concern ``majority`` with journaling: a ``sent`` frame is
only sent once this returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, WriteConcern
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

Doc = dict[str, Any]
_DUPLICATE_KEY = 11000


@dataclass(frozen=True)
class StoredEnvelope:
    envelope_id: str
    message_id: str
    device_id: str
    sender_device: str
    sender_person: str
    ciphertext: bytes
    created_at: datetime


def envelope_id(message_id: str, device_id: str) -> str:
    return f"{message_id}.{device_id}"


def _envelope(doc: Doc) -> StoredEnvelope:
    return StoredEnvelope(
        envelope_id=doc["_id"],
        message_id=doc["message_id"],
        device_id=doc["device_id"],
        sender_device=doc["sender_device"],
        sender_person=doc["sender_person"],
        ciphertext=bytes(doc["ciphertext"]),
        created_at=doc["created_at"],
    )


class EnvelopeRepository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._envelopes = db.get_collection(
            "envelopes", write_concern=WriteConcern(w="majority", j=True)
        )

    async def create_indexes(self) -> None:
        await self._envelopes.create_index(
            [("device_id", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)],
            name="device_queue",
        )
        await self._envelopes.create_index("message_id", name="message")
        await self._envelopes.create_index("expires_at", expireAfterSeconds=0, name="ttl")

    async def store(self, envelopes: Sequence[StoredEnvelope], expires_at: datetime) -> datetime:
        """Store a message's envelopes durably; idempotent.

        Returns:
            The storage time of the message: that of the first write when this
            is a retry, so a retried send is answered exactly like the first.
        """
        docs = [
            {
                "_id": e.envelope_id,
                "message_id": e.message_id,
                "device_id": e.device_id,
                "sender_device": e.sender_device,
                "sender_person": e.sender_person,
                "ciphertext": e.ciphertext,
                "created_at": e.created_at,
                "expires_at": expires_at,
            }
            for e in envelopes
        ]
        try:
            await self._envelopes.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(err.get("code") != _DUPLICATE_KEY for err in errors):
                raise
            first = await self._envelopes.find_one(
                {"message_id": envelopes[0].message_id}, {"created_at": 1}
            )
            if first is not None:
                stored: datetime = first["created_at"]
                return stored
        return envelopes[0].created_at

    async def pending(
        self, device_id: str, limit: int, after: StoredEnvelope | None = None
    ) -> list[StoredEnvelope]:
        """The device's oldest undelivered envelopes, in the order they were stored.

        Args:
            device_id: the recipient device.
            limit: page size.
            after: the last envelope of the previous page, to read the next one.
        """
        query: Doc = {"device_id": device_id}
        if after is not None:
            query["$or"] = [
                {"created_at": {"$gt": after.created_at}},
                {"created_at": after.created_at, "_id": {"$gt": after.envelope_id}},
            ]
        cursor = (
            self._envelopes.find(query)
            .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )
        return [_envelope(doc) async for doc in cursor]

    async def acknowledge(self, device_id: str, envelope_ids: Sequence[str]) -> int:
        """Drop acknowledged envelopes; only the device's own can be dropped."""
        result = await self._envelopes.delete_many(
            {"_id": {"$in": list(envelope_ids)}, "device_id": device_id}
        )
        return result.deleted_count

    async def count_pending(self, device_id: str) -> int:
        return await self._envelopes.count_documents({"device_id": device_id})
