"""The SMTP bridge's aggregate: server-held device state, mailbox, mail queue, tokens.

Documents (docs/email-bridge.md, "What is stored")::

    bridge_devices {_id: device id, person_id, uai, email, sealed, key_id, version,
                    lease_owner, lease_until, created_at, updated_at}
    bridge_inbox   {_id: "<device>:<conversation>:<seq>", device_id, conversation,
                    seq, sender_person, created_at, sealed, expires_at}
    bridge_outbox  {_id, device_id, person_id, uai, to, domain, conversation,
                    first_seq, last_seq, seqs, status, attempts, send_after,
                    next_attempt_at, lease_until, sent_at, last_error, expires_at}
    bridge_tokens  {_id: token id, purpose: link|reply, device_id, person_id,
                    conversation, expires_at}
    bridge_used    {_id: SHA-256 of a form nonce or an email's Message-ID, at, expires_at}
    bridge_bounces {_id, uai, person_id, email, code, reason, outbox_id, at, expires_at}
    bridge_schools {_id: uai, full_content, updated_at}
    bridge_rate    {_id: "<domain>:<minute>", count, expires_at}

``sealed`` fields are encrypted by ``server.bridge.keyring`` with the bridge key
before they reach this module: the device's private keys and sessions, and the
messages the bridge decrypted for the parent. Nothing here is plaintext content
(RGPD art. 32, security of processing). Every document with personal data has
an ``expires_at`` with a TTL index (art. 5(1)(e), storage limitation).

Outbox states: ``queued`` (collecting messages of one conversation until
``send_after``: one email per conversation per batch window) → ``sending``
(claimed by one node until ``lease_until``) → ``sent``, or ``retry`` (with
``next_attempt_at``, exponential backoff) → ... → ``failed`` / ``bounced``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument, WriteConcern
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from storage.ids import new_id
from storage.models import DeviceKind

Doc = dict[str, Any]
KEEP_SENT = timedelta(days=30)
KEEP_BOUNCES = timedelta(days=365)


@dataclass(frozen=True)
class BridgeDevice:
    """A server-held device: its sealed state and the version that guards writes."""

    device_id: str
    person_id: str
    uai: str
    email: str
    sealed: bytes
    version: int


@dataclass(frozen=True)
class Token:
    purpose: str
    token_id: str
    device_id: str
    person_id: str
    conversation: str
    expires_at: datetime


@dataclass(frozen=True)
class InboxEntry:
    conversation: str
    seq: int
    sender_person: str
    created_at: datetime
    sealed: bytes


def _device(doc: Doc) -> BridgeDevice:
    return BridgeDevice(
        doc["_id"], doc["person_id"], doc["uai"], doc["email"], bytes(doc["sealed"]),
        int(doc["version"]),
    )  # fmt: skip


class BridgeRepository:
    """Storage of the SMTP bridge (issue 7)."""

    def __init__(self, client: AsyncMongoClient[Doc], db: AsyncDatabase[Doc]) -> None:
        durable = WriteConcern(w="majority", j=True)
        self._client = client
        self._devices = db.get_collection("bridge_devices", write_concern=durable)
        self._people_devices = db.get_collection("devices", write_concern=durable)
        self._people = db["people"]
        self._inbox = db.get_collection("bridge_inbox", write_concern=durable)
        self._outbox = db.get_collection("bridge_outbox", write_concern=durable)
        self._tokens = db["bridge_tokens"]
        self._used = db["bridge_used"]
        self._bounces = db["bridge_bounces"]
        self._schools = db["bridge_schools"]
        self._rate = db["bridge_rate"]

    async def create_indexes(self) -> None:
        await self._devices.create_index("person_id", unique=True, name="person")
        await self._inbox.create_index(
            [("device_id", ASCENDING), ("conversation", ASCENDING), ("seq", ASCENDING)],
            name="mailbox",
        )
        await self._outbox.create_index(
            [("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="due"
        )
        await self._outbox.create_index(
            [("device_id", ASCENDING), ("conversation", ASCENDING), ("status", ASCENDING)],
            name="batch",
        )
        await self._bounces.create_index([("uai", ASCENDING), ("at", ASCENDING)], name="school")
        for collection in (self._inbox, self._outbox, self._tokens, self._used, self._bounces,
                           self._rate):  # fmt: skip
            await collection.create_index("expires_at", expireAfterSeconds=0, name="ttl")

    # --- devices --------------------------------------------------------------

    async def create_device(
        self, person_id: str, uai: str, email: str, identity_key: bytes, sealed: bytes,
        now: datetime,
    ) -> tuple[str, bool]:  # fmt: skip
        """Create a person's ``email-bridge`` device and its sealed state, atomically.

        Returns:
            The device id and whether it was created now (False: it existed).
        """
        existing = await self._devices.find_one({"person_id": person_id}, {"_id": 1})
        if existing is not None:
            return str(existing["_id"]), False
        device_id = new_id("d")
        try:
            async with self._client.start_session() as session:
                async with await session.start_transaction():
                    await self._devices.insert_one(
                        {"_id": device_id, "person_id": person_id, "uai": uai, "email": email,
                         "sealed": sealed, "version": 1, "lease_owner": None,
                         "lease_until": None, "created_at": now, "updated_at": now},
                        session=session,
                    )  # fmt: skip
                    await self._people_devices.insert_one(
                        {"_id": device_id, "person_id": person_id,
                         "kind": DeviceKind.EMAIL_BRIDGE.value, "identity_key": identity_key,
                         "created_at": now},
                        session=session,
                    )  # fmt: skip
                    await self._people.update_one(
                        {"_id": person_id}, {"$set": {"email_only": True, "updated_at": now}},
                        session=session,
                    )  # fmt: skip
        except DuplicateKeyError:  # another node created it first
            raced = await self._devices.find_one({"person_id": person_id}, {"_id": 1})
            if raced is None:
                raise
            return str(raced["_id"]), False
        return device_id, True

    async def email_only_without_device(self, limit: int = 100) -> list[Doc]:
        """People marked ``email_only`` (directory import) with an email and no bridge device."""
        have = await self._devices.distinct("person_id")
        cursor = self._people.find(
            {"email_only": True, "email": {"$ne": None}, "left_at": None, "_id": {"$nin": have}},
            {"uai": 1, "email": 1},
        ).limit(limit)
        return [doc async for doc in cursor]

    async def device(self, device_id: str) -> BridgeDevice | None:
        doc = await self._devices.find_one({"_id": device_id})
        return _device(doc) if doc else None

    async def device_of(self, person_id: str) -> BridgeDevice | None:
        doc = await self._devices.find_one({"person_id": person_id})
        return _device(doc) if doc else None

    async def device_ids(self, limit: int = 10_000) -> list[str]:
        cursor = self._devices.find({}, {"_id": 1}).sort("_id", ASCENDING).limit(limit)
        return [str(doc["_id"]) async for doc in cursor]

    async def save_state(
        self, device_id: str, sealed: bytes, version: int, email: str, now: datetime
    ) -> bool:
        """Replace the sealed state if nobody wrote since ``version`` (optimistic lock)."""
        result = await self._devices.update_one(
            {"_id": device_id, "version": version},
            {"$set": {"sealed": sealed, "email": email, "updated_at": now},
             "$inc": {"version": 1}},
        )  # fmt: skip
        return result.modified_count == 1

    async def lease(self, device_id: str, owner: str, now: datetime, hold: timedelta) -> bool:
        """Take the processing lease of one bridge device (one node at a time)."""
        doc = await self._devices.find_one_and_update(
            {"_id": device_id,
             "$or": [{"lease_until": None}, {"lease_until": {"$lte": now}},
                     {"lease_owner": owner}]},
            {"$set": {"lease_owner": owner, "lease_until": now + hold}},
            projection={"_id": 1},
        )  # fmt: skip
        return doc is not None

    async def release(self, device_id: str, owner: str) -> None:
        await self._devices.update_one(
            {"_id": device_id, "lease_owner": owner}, {"$set": {"lease_until": None}}
        )

    # --- mailbox --------------------------------------------------------------

    async def keep(
        self, device_id: str, conversation: str, seq: int, sender_person: str,
        created_at: datetime, sealed: bytes, expires_at: datetime,
    ) -> None:  # fmt: skip
        """Keep a decrypted message (sealed) for the reading page; idempotent."""
        await self._inbox.update_one(
            {"_id": f"{device_id}:{conversation}:{seq}"},
            {"$setOnInsert": {"device_id": device_id, "conversation": conversation, "seq": seq,
                              "sender_person": sender_person, "created_at": created_at,
                              "sealed": sealed, "expires_at": expires_at}},
            upsert=True,
        )  # fmt: skip

    async def mailbox(
        self, device_id: str, conversation: str, limit: int = 50, seqs: Sequence[int] = ()
    ) -> list[InboxEntry]:
        """The latest kept messages of a conversation, oldest first."""
        query: Doc = {"device_id": device_id, "conversation": conversation}
        if seqs:
            query["seq"] = {"$in": list(seqs)}
        cursor = self._inbox.find(query).sort("seq", -1).limit(limit)
        found = [
            InboxEntry(d["conversation"], int(d["seq"]), d["sender_person"], d["created_at"],
                       bytes(d["sealed"]))
            async for d in cursor
        ]  # fmt: skip
        return found[::-1]

    # --- outgoing mail --------------------------------------------------------

    async def queue_notification(
        self, device_id: str, person_id: str, uai: str, to: str, conversation: str, seq: int,
        now: datetime, send_after: datetime,
    ) -> bool:  # fmt: skip
        """Add a message to the conversation's open notification (batching).

        Returns:
            True if a new email was queued, False if the message joined one.
        """
        before = await self._outbox.find_one_and_update(
            {"device_id": device_id, "conversation": conversation, "status": "queued"},
            {"$max": {"last_seq": seq}, "$min": {"first_seq": seq}, "$addToSet": {"seqs": seq},
             "$setOnInsert": {"_id": new_id("o"), "person_id": person_id, "uai": uai,
                              "to": to, "domain": to.rpartition("@")[2].lower(),
                              "created_at": now, "send_after": send_after,
                              "next_attempt_at": send_after, "attempts": 0,
                              "expires_at": now + KEEP_SENT * 3}},
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )  # fmt: skip
        return before is None

    async def claim_due(self, now: datetime, hold: timedelta, limit: int) -> list[Doc]:
        """Claim due emails for this node (``sending`` until ``now + hold``)."""
        claimed: list[Doc] = []
        for _ in range(limit):
            doc = await self._outbox.find_one_and_update(
                {"$or": [{"status": {"$in": ["queued", "retry"]}, "next_attempt_at": {"$lte": now}},
                         {"status": "sending", "lease_until": {"$lte": now}}]},
                {"$set": {"status": "sending", "lease_until": now + hold}},
                sort=[("next_attempt_at", ASCENDING)],
                return_document=ReturnDocument.AFTER,
            )  # fmt: skip
            if doc is None:
                break
            claimed.append(doc)
        return claimed

    async def mark_sent(self, outbox_id: str, now: datetime) -> None:
        await self._outbox.update_one(
            {"_id": outbox_id},
            {"$set": {"status": "sent", "sent_at": now, "expires_at": now + KEEP_SENT},
             "$inc": {"attempts": 1}},
        )  # fmt: skip

    async def mark_retry(
        self, outbox_id: str, attempts: int, next_attempt_at: datetime, error: str
    ) -> None:
        await self._outbox.update_one(
            {"_id": outbox_id},
            {"$set": {"status": "retry", "attempts": attempts, "next_attempt_at": next_attempt_at,
                      "last_error": error}},
        )  # fmt: skip

    async def defer(self, outbox_id: str, next_attempt_at: datetime) -> None:
        """Put a claimed email back unchanged (a rate limit, not a failure)."""
        await self._outbox.update_one(
            {"_id": outbox_id, "status": "sending"},
            {"$set": {"status": "retry", "next_attempt_at": next_attempt_at}},
        )

    async def mark_final(
        self, outbox: Doc, status: str, code: int | None, reason: str, now: datetime
    ) -> None:
        """``failed`` (gave up) or ``bounced`` (refused by the relay): recorded for the school."""
        await self._outbox.update_one(
            {"_id": outbox["_id"]},
            {"$set": {"status": status, "last_error": reason, "expires_at": now + KEEP_SENT},
             "$inc": {"attempts": 1}},
        )  # fmt: skip
        await self._bounces.insert_one(
            {"_id": new_id("b"), "uai": outbox["uai"], "person_id": outbox["person_id"],
             "email": outbox["to"], "code": code, "reason": reason, "status": status,
             "outbox_id": outbox["_id"], "at": now, "expires_at": now + KEEP_BOUNCES}
        )  # fmt: skip

    async def bounces(self, uai: str, limit: int = 500) -> list[Doc]:
        cursor = self._bounces.find({"uai": uai}, {"expires_at": 0}).sort("at", -1).limit(limit)
        return [doc async for doc in cursor]

    async def outbox_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        async for row in await self._outbox.aggregate(
            [{"$group": {"_id": "$status", "n": {"$sum": 1}}}]
        ):
            counts[str(row["_id"])] = int(row["n"])
        return counts

    async def take_rate(self, domain: str, bucket: str, limit: int, expires_at: datetime) -> bool:
        """Count one email to ``domain`` in this minute; False if the limit is reached."""
        doc = await self._rate.find_one_and_update(
            {"_id": f"{domain}:{bucket}"},
            {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": expires_at}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None and int(doc["count"]) > limit:
            await self._rate.update_one({"_id": f"{domain}:{bucket}"}, {"$inc": {"count": -1}})
            return False
        return True

    # --- tokens ---------------------------------------------------------------

    async def add_token(self, token: Token) -> None:
        await self._tokens.insert_one(
            {"_id": token.token_id, "purpose": token.purpose, "device_id": token.device_id,
             "person_id": token.person_id, "conversation": token.conversation,
             "expires_at": token.expires_at}
        )  # fmt: skip

    async def token(self, token_id: str) -> Token | None:
        doc = await self._tokens.find_one({"_id": token_id})
        if doc is None:
            return None
        return Token(
            doc["purpose"], doc["_id"], doc["device_id"], doc["person_id"], doc["conversation"],
            doc["expires_at"],
        )  # fmt: skip

    async def use_once(self, digest: str, now: datetime, keep: timedelta) -> bool:
        """Record a one-time value (form nonce, email Message-ID); False if already used."""
        try:
            await self._used.insert_one({"_id": digest, "at": now, "expires_at": now + keep})
        except DuplicateKeyError:
            return False
        return True

    # --- school settings ------------------------------------------------------

    async def full_content(self, uai: str) -> bool:
        doc = await self._schools.find_one({"_id": uai})
        return bool(doc and doc.get("full_content"))

    async def set_full_content(self, uai: str, enabled: bool, now: datetime) -> None:
        await self._schools.update_one(
            {"_id": uai}, {"$set": {"full_content": enabled, "updated_at": now}}, upsert=True
        )
