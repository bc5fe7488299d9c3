"""Message repository: one document per message, ciphertext until delivered.

Documents::

    messages {_id: message id, conversation, seq, node, sender_device,
              sender_person, created_at, expires_at, recipients: [device ids],
              pairwise: {device id: ciphertext}, group: ciphertext,
              commitment, stamp, event}

A pairwise message holds one ciphertext per recipient device; a group
(sender-key) message holds ONE ciphertext for every member device; an event
(membership change) holds no ciphertext. Reads for a device project only its
own ciphertext. Ciphertext is removed once every recipient device has
acknowledged it (:meth:`drop_ciphertext`) and the whole document when the
undelivered lifetime is over (:meth:`expired`, :meth:`delete`, run by every
node every 30 s): RGPD art. 5(1)(c) and (e), minimisation and storage
limitation.

Message ids derive from the sender device and the client's message id, so a
retried send hits the same ``_id`` and is answered with the first write's
seq. Writes use write concern ``majority`` with journaling: ``sent`` is only
sent once :meth:`insert_ordered` returns.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, WriteConcern
from pymongo.asynchronous.database import AsyncDatabase

Doc = dict[str, Any]
DUPLICATE_KEY = 11000


@dataclass(frozen=True)
class Held:
    """A stored message that still holds ciphertext (what the purge looks at)."""

    message_id: str
    seq: int
    recipients: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class NewMessage:
    """A message as the sender's node writes it (its seq is given at write time)."""

    message_id: str
    conversation: str
    sender_device: str
    sender_person: str
    created_at: datetime
    pairwise: dict[str, bytes] = field(default_factory=dict)
    group_ciphertext: bytes | None = None
    group_devices: tuple[str, ...] = ()
    commitment: bytes | None = None
    stamp: bytes | None = None
    event: dict[str, Any] | None = None
    event_devices: tuple[str, ...] = ()
    silent_devices: tuple[str, ...] = ()
    """Recipients in quiet hours: delivered without notification (docs/moderation.md)."""

    @property
    def recipients(self) -> list[str]:
        return [*self.pairwise, *self.group_devices, *self.event_devices]


@dataclass(frozen=True)
class StoredMessage:
    """A stored message as one recipient device sees it."""

    message_id: str
    conversation: str
    seq: int
    sender_device: str
    sender_person: str
    created_at: datetime
    ciphertext: bytes | None
    group: bool
    commitment: bytes | None = None
    stamp: bytes | None = None
    event: dict[str, Any] | None = None
    silent: bool = False


@dataclass(frozen=True)
class WriteResult:
    """What the first write of a message recorded (a retry is answered with it)."""

    seq: int
    created_at: datetime
    stamp: bytes | None


def _opt_bytes(value: Any) -> bytes | None:
    return bytes(value) if value is not None else None


def view_for(doc: Doc, device_id: str) -> StoredMessage:
    """The message as ``device_id`` receives it (its own ciphertext only)."""
    group = doc.get("group")
    own = (doc.get("pairwise") or {}).get(device_id)
    return StoredMessage(
        message_id=doc["_id"],
        conversation=doc["conversation"],
        seq=int(doc["seq"]),
        sender_device=doc["sender_device"],
        sender_person=doc["sender_person"],
        created_at=doc["created_at"],
        ciphertext=_opt_bytes(own if own is not None else group),
        group=own is None and group is not None,
        commitment=_opt_bytes(doc.get("commitment")),
        stamp=_opt_bytes(doc.get("stamp")),
        event=doc.get("event"),
        silent=device_id in (doc.get("silent") or ()),
    )


def message_document(message: NewMessage, seq: int, node: str, expires_at: datetime) -> Doc:
    doc: Doc = {
        "_id": message.message_id,
        "conversation": message.conversation,
        "seq": seq,
        "node": node,
        "sender_device": message.sender_device,
        "sender_person": message.sender_person,
        "created_at": message.created_at,
        "expires_at": expires_at,
        "recipients": message.recipients,
    }
    if message.pairwise:
        doc["pairwise"] = message.pairwise
    if message.group_ciphertext is not None:
        doc["group"] = message.group_ciphertext
    if message.commitment is not None:
        doc["commitment"] = message.commitment
        doc["stamp"] = message.stamp
    if message.event is not None:
        doc["event"] = message.event
    if message.silent_devices:
        doc["silent"] = list(message.silent_devices)
    return doc


def seq_pages(after: int, upto: int, size: int) -> Iterator[tuple[int, int]]:
    """``(low, high)`` ranges of at most ``size`` seqs covering ``after < seq <= upto``,
    in order: how callers page :meth:`MessageRepository.for_device`."""
    while after < upto:
        high = min(upto, after + size)
        yield after, high
        after = high


class MessageRepository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.collection = db.get_collection(
            "messages", write_concern=WriteConcern(w="majority", j=True)
        )

    async def create_indexes(self) -> None:
        """``(conversation, seq)`` (unique: the seq arbiter, and every read of a
        range) and ``expires_at`` (:meth:`delete_expired`); nothing else.

        ``expires_at`` is a plain index, not a TTL index: SecantusDB 0.7's TTL
        sweeper reads and decodes every document of every collection that
        has one, under its storage lock, every 60 s — a stall of 1.6 s at
        100,000 messages, 3 s at 200,000, for every writer (measured,
        docs/performance.md). The node deletes expired messages itself.
        No query here passes ``hint()``: SecantusDB then walks the whole
        hinted index and decodes every document (1.1 s at 50,000 messages
        for a read that returns none); its planner picks these indexes alone.

        No index on ``recipients``: on SecantusDB that multikey index cost
        ≈ 120 µs per stored message (327 vs 206 µs per document in batches
        of 100, docs/performance.md), one entry per recipient device (a class
        channel's message made a hundred). A device's reads name their
        conversation and scan its seq range; removing a person's devices
        (:meth:`forget_devices`) reads the whole collection once, as the
        erasure's own scan of every collection already does.
        """
        await self.collection.create_index(
            [("conversation", ASCENDING), ("seq", ASCENDING)], unique=True, name="conversation_seq"
        )
        existing = await self.collection.index_information()
        for previous in ("recipient_backlog", "ttl"):  # the previous design's
            if previous in existing:
                await self.collection.drop_index(previous)
        await self.collection.create_index("expires_at", name="expiry")

    async def insert_ordered(self, docs: Sequence[Doc]) -> None:
        """Write message documents durably in one round trip, in order.

        The write stops at the first error (``ordered=True``): what precedes
        it is stored, nothing after it is.

        Raises:
            BulkWriteError: with the one failed document's ``index`` and
                ``code`` (``DUPLICATE_KEY``: the ``_id`` or the
                ``(conversation, seq)`` is taken).
        """
        await self.collection.insert_many(list(docs), ordered=True)

    async def first_write(self, message_id: str) -> WriteResult | None:
        """What was stored for ``message_id``, if it is stored (a retried send)."""
        first = await self.collection.find_one(
            {"_id": message_id}, {"seq": 1, "created_at": 1, "stamp": 1}
        )
        if first is None:
            return None
        return WriteResult(int(first["seq"]), first["created_at"], _opt_bytes(first.get("stamp")))

    async def last_seq(self, conversation: str, after: int = 0) -> int | None:
        """The highest seq stored in ``conversation`` above ``after``, or None.

        Reads the index range above ``after`` (SecantusDB 0.7 reads a whole
        range before any limit): callers pass a seq known to be near the head.
        """
        doc = await self.collection.find_one(
            {"conversation": conversation, "seq": {"$gt": after}},
            {"seq": 1},
            sort=[("seq", DESCENDING)],
        )
        return int(doc["seq"]) if doc else None

    async def for_device(
        self, device_id: str, conversation: str, after: int, upto: int
    ) -> list[StoredMessage]:
        """Messages of ``conversation`` addressed to the device with ``after < seq <= upto``.

        Callers page by seq range, not with a limit: SecantusDB 0.7 reads the
        whole index range of a query before it applies a limit, so an open
        range (``seq > after``) read the rest of the conversation for every
        page of a catch-up (docs/performance.md, "what SecantusDB 0.7 scans").
        """
        projection = {
            "conversation": 1, "seq": 1, "sender_device": 1, "sender_person": 1,
            "created_at": 1, "group": 1, f"pairwise.{device_id}": 1, "commitment": 1,
            "stamp": 1, "event": 1, "silent": 1,
        }  # fmt: skip
        cursor = self.collection.find(
            {
                "conversation": conversation,
                "seq": {"$gt": after, "$lte": upto},
                "recipients": device_id,
            },
            projection,
        ).sort("seq", ASCENDING)
        return [view_for(doc, device_id) async for doc in cursor]

    async def first_seq(self, conversation: str, upto: int) -> int | None:
        """The lowest seq still stored (older ones expired) up to ``upto``, or None.

        Windows of 1, 10, 100, ... seqs from the start, each a bounded index
        range: SecantusDB 0.7 reads a whole index range before any limit, so
        ``sort(seq).limit(1)`` over the conversation read all of it (300 ms
        for a class channel of 10,000 messages). Messages expire oldest first:
        the first window that holds one holds the answer, and reading it costs
        at most ten times the expired stretch.
        """
        low, width = 0, 1
        while low < upto:
            high = min(upto, low + width)
            doc = await self.collection.find_one(
                {"conversation": conversation, "seq": {"$gt": low, "$lte": high}},
                {"seq": 1},
                sort=[("seq", ASCENDING)],
            )
            if doc is not None:
                return int(doc["seq"])
            low, width = high, width * 10
        return None

    async def undelivered(self, conversation: str, after: int, upto: int) -> tuple[list[Held], int]:
        """The messages of ``conversation`` with ``after < seq <= upto`` that still
        hold ciphertext, by seq, and the highest seq stored in that range (``after``
        when none is).

        A bounded range of the ``(conversation, seq)`` index, and whether a
        message holds ciphertext is seen here, not asked with ``$exists``:
        SecantusDB 0.7 plans a collection scan for ``$exists``, and reads a
        whole index range before it applies any limit (docs/performance.md,
        "what SecantusDB 0.7 scans"). The projection names a field no device
        has under ``pairwise`` (an empty map says it is there, no ciphertext
        is sent); the group ciphertext, one per message, comes whole.
        """
        cursor = self.collection.find(
            {"conversation": conversation, "seq": {"$gt": after, "$lte": upto}},
            {"seq": 1, "recipients": 1, "created_at": 1, "pairwise._": 1, "group": 1},
        )
        held: list[Held] = []
        highest = after
        async for d in cursor:
            highest = max(highest, int(d["seq"]))
            if "pairwise" in d or "group" in d:
                held.append(Held(d["_id"], int(d["seq"]), tuple(d["recipients"]), d["created_at"]))
        return sorted(held, key=lambda m: m.seq), highest

    async def drop_ciphertext(self, conversation: str, first: int, last: int) -> int:
        """Remove the ciphertext of the messages ``first <= seq <= last``; metadata stays.

        A range of the ``(conversation, seq)`` index, not a list of ids: the
        embedded database updates a range for ≈ 20 % less (docs/performance.md).
        The caller passes a range whose every message is delivered.
        """
        result = await self.collection.update_many(
            {"conversation": conversation, "seq": {"$gte": first, "$lte": last}},
            {"$unset": {"pairwise": "", "group": ""}},
        )
        return result.modified_count

    async def expired(self, now: datetime, limit: int) -> list[str]:
        """Ids of up to ``limit`` messages past ``expires_at``, oldest first."""
        cursor = (
            self.collection.find({"expires_at": {"$lt": now}}, {"_id": 1})
            .sort("expires_at", ASCENDING)
            .limit(limit)
        )
        return [doc["_id"] async for doc in cursor]

    async def delete(self, message_ids: Sequence[str]) -> int:
        """Delete these messages (expired: metadata and any ciphertext left)."""
        if not message_ids:
            return 0
        result = await self.collection.delete_many({"_id": {"$in": list(message_ids)}})
        return result.deleted_count

    async def forget_devices(self, device_ids: Sequence[str]) -> None:
        """Removed devices are no recipients any more and their ciphertexts go.

        One pass over the collection for all of a person's devices: there is
        no index on ``recipients`` (see :meth:`create_indexes`).
        """
        if not device_ids:
            return
        devices = list(device_ids)
        await self.collection.update_many(
            {"recipients": {"$in": devices}},
            {
                "$pull": {"recipients": {"$in": devices}},
                "$unset": {f"pairwise.{d}": "" for d in devices},
            },
        )

    async def heads_since(self, expires_from: datetime) -> dict[str, int]:
        """Conversation → highest seq among messages with ``expires_at >=
        expires_from``, i.e. created at or after ``expires_from - lifetime``.

        A range of the ``expiry`` index, two fields projected: what a node may
        have stored but not published since its mark (``storage.heads``).
        """
        heads: dict[str, int] = {}
        cursor = self.collection.find(
            {"expires_at": {"$gte": expires_from}}, {"_id": 0, "conversation": 1, "seq": 1}
        )
        async for doc in cursor:
            conversation, seq = doc["conversation"], int(doc["seq"])
            if seq > heads.get(conversation, 0):
                heads[conversation] = seq
        return heads
