"""Envelope queue repository: ciphertext waiting for its device (DESIGN.md, RGPD).

Documents::

    envelopes      {_id: "<message id>.<device id>", order, message_id, device_id,
                    sender_device, sender_person, conversation, ciphertext | group,
                    commitment, stamp, created_at, expires_at}
    group_payloads {_id: message id, ciphertext, expires_at}

A pairwise envelope carries its own ciphertext. A group message's single
ciphertext is stored once in ``group_payloads`` and each member's envelope
only points at it (``group: true``): one ciphertext, not one per device.

``order`` is an ObjectId taken when the message is stored: queues are read in
that order (monotonic per node; across nodes, per second). Ciphertext is kept
only until the recipient acknowledges it, and never longer than the
undelivered lifetime (TTL indexes on ``expires_at``); a group payload goes
when its last envelope is acknowledged. Envelope ids derive from the message
id, itself derived from the sender device and the client's message id, so a
retried send writes nothing twice. Writes use write concern ``majority`` with
journaling: a ``sent`` frame is only sent once :meth:`store` returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, WriteConcern
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

Doc = dict[str, Any]
_DUPLICATE_KEY = 11000


@dataclass(frozen=True)
class OutgoingMessage:
    """A message as the sender's node stores it."""

    message_id: str
    sender_device: str
    sender_person: str
    conversation: str | None
    created_at: datetime
    pairwise: dict[str, bytes] = field(default_factory=dict)
    """Device id → that device's ciphertext."""
    group_ciphertext: bytes | None = None
    group_devices: tuple[str, ...] = ()
    commitment: bytes | None = None
    stamp: bytes | None = None


@dataclass(frozen=True)
class StoredEnvelope:
    envelope_id: str
    message_id: str
    device_id: str
    sender_device: str
    sender_person: str
    conversation: str | None
    ciphertext: bytes
    group: bool
    created_at: datetime
    commitment: bytes | None = None
    stamp: bytes | None = None
    order: ObjectId | None = None


@dataclass(frozen=True)
class StoredHeader:
    """What the first write of a message recorded (a retry is answered with it)."""

    created_at: datetime
    stamp: bytes | None


def envelope_id(message_id: str, device_id: str) -> str:
    return f"{message_id}.{device_id}"


def _optional_bytes(value: Any) -> bytes | None:
    return bytes(value) if value is not None else None


class EnvelopeRepository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        durable = WriteConcern(w="majority", j=True)
        self._envelopes = db.get_collection("envelopes", write_concern=durable)
        self._payloads = db.get_collection("group_payloads", write_concern=durable)

    async def create_indexes(self) -> None:
        await self._envelopes.create_index(
            [("device_id", ASCENDING), ("order", ASCENDING)], name="device_queue"
        )
        await self._envelopes.create_index("message_id", name="message")
        await self._envelopes.create_index("expires_at", expireAfterSeconds=0, name="ttl")
        await self._payloads.create_index("expires_at", expireAfterSeconds=0, name="ttl")

    def envelopes_of(self, message: OutgoingMessage) -> list[StoredEnvelope]:
        """The envelopes :meth:`store` writes for ``message``, as they will be read back."""

        def one(device_id: str, ciphertext: bytes, group: bool) -> StoredEnvelope:
            return StoredEnvelope(
                envelope_id=envelope_id(message.message_id, device_id),
                message_id=message.message_id,
                device_id=device_id,
                sender_device=message.sender_device,
                sender_person=message.sender_person,
                conversation=message.conversation,
                ciphertext=ciphertext,
                group=group,
                created_at=message.created_at,
                commitment=message.commitment,
                stamp=message.stamp,
            )

        pairwise = [one(d, c, False) for d, c in message.pairwise.items()]
        shared = message.group_ciphertext or b""
        group = [one(d, shared, True) for d in message.group_devices]
        return pairwise + group

    async def store(self, message: OutgoingMessage, expires_at: datetime) -> StoredHeader:
        """Store a message's ciphertexts durably; idempotent.

        Returns:
            The header of the first write of this message id: a retried send is
            answered exactly like the first one.
        """
        if message.group_ciphertext is not None:
            try:
                await self._payloads.insert_one(
                    {
                        "_id": message.message_id,
                        "ciphertext": message.group_ciphertext,
                        "expires_at": expires_at,
                    }
                )
            except DuplicateKeyError:
                pass  # a retry: the payload is already there
        order = ObjectId()
        docs = []
        for envelope in self.envelopes_of(message):
            doc: Doc = {
                "_id": envelope.envelope_id,
                "order": order,
                "message_id": envelope.message_id,
                "device_id": envelope.device_id,
                "sender_device": envelope.sender_device,
                "sender_person": envelope.sender_person,
                "conversation": envelope.conversation,
                "commitment": envelope.commitment,
                "stamp": envelope.stamp,
                "created_at": envelope.created_at,
                "expires_at": expires_at,
            }
            if envelope.group:
                doc["group"] = True
            else:
                doc["ciphertext"] = envelope.ciphertext
            docs.append(doc)
        try:
            await self._envelopes.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != _DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise
            first = await self._envelopes.find_one(
                {"message_id": message.message_id}, {"created_at": 1, "stamp": 1}
            )
            if first is not None:
                return StoredHeader(first["created_at"], _optional_bytes(first.get("stamp")))
        return StoredHeader(message.created_at, message.stamp)

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
            query["order"] = {"$gt": after.order}
        cursor = self._envelopes.find(query).sort("order", ASCENDING).limit(limit)
        docs = [doc async for doc in cursor]
        group_ids = sorted({d["message_id"] for d in docs if d.get("group")})
        payloads: dict[str, bytes] = {}
        if group_ids:
            async for p in self._payloads.find({"_id": {"$in": group_ids}}):
                payloads[p["_id"]] = bytes(p["ciphertext"])
        return [
            StoredEnvelope(
                envelope_id=d["_id"],
                message_id=d["message_id"],
                device_id=d["device_id"],
                sender_device=d["sender_device"],
                sender_person=d["sender_person"],
                conversation=d.get("conversation"),
                ciphertext=payloads.get(d["message_id"], b"")
                if d.get("group")
                else bytes(d["ciphertext"]),
                group=bool(d.get("group")),
                created_at=d["created_at"],
                commitment=_optional_bytes(d.get("commitment")),
                stamp=_optional_bytes(d.get("stamp")),
                order=d["order"],
            )
            for d in docs
            if not d.get("group") or d["message_id"] in payloads
        ]

    async def acknowledge(self, device_id: str, envelope_ids: Sequence[str]) -> int:
        """Drop acknowledged envelopes (only the device's own), and group payloads
        that no envelope points at any more."""
        ids = list(envelope_ids)
        groups = [
            d["message_id"]
            async for d in self._envelopes.find(
                {"_id": {"$in": ids}, "device_id": device_id, "group": True}, {"message_id": 1}
            )
        ]
        result = await self._envelopes.delete_many({"_id": {"$in": ids}, "device_id": device_id})
        for message_id in groups:
            if await self._envelopes.count_documents({"message_id": message_id}, limit=1) == 0:
                await self._payloads.delete_one({"_id": message_id})
        return result.deleted_count

    async def count_pending(self, device_id: str) -> int:
        return await self._envelopes.count_documents({"device_id": device_id})

    async def forget_device(self, device_id: str) -> None:
        """Drop everything queued for a device (device or person removed)."""
        docs = self._envelopes.find({"device_id": device_id}, {"_id": 1})
        await self.acknowledge(device_id, [d["_id"] async for d in docs])
