"""Enrolment codes and devices: the enrolment aggregate.

Documents::

    enrolment_codes {_id: lookup, secret_hash, person_id, created_at,
                     expires_at, attempts, locked, used_at, device_id}
    devices         {_id: device id, person_id, kind, identity_key,
                     created_at, revoked_at}

A code is redeemed and its device created in one transaction: a code is never
spent without a device, nor a device created from a spent code.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, WriteConcern
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from storage.errors import DuplicateKey
from storage.ids import new_id
from storage.models import Device, DeviceKind

Doc = dict[str, Any]
SPEND_TRIES = 3


class Redemption(StrEnum):
    """Outcome of trying a code, as far as the repository can tell."""

    OK = "ok"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED = "used"
    LOCKED = "locked"
    MISMATCH = "mismatch"


def _device(doc: Doc) -> Device:
    return Device(
        id=doc["_id"],
        person_id=doc["person_id"],
        kind=DeviceKind(doc["kind"]),
        identity_key=bytes(doc["identity_key"]),
        created_at=doc["created_at"],
        revoked_at=doc.get("revoked_at"),
    )


class EnrolmentRepository:
    """Codes and the devices they create."""

    def __init__(
        self, client: AsyncMongoClient[Doc], db: AsyncDatabase[Doc], max_attempts: int
    ) -> None:
        self._client = client
        # Majority-acknowledged writes: the redeeming transaction reads at the
        # majority point, so a code issued a moment ago must already be there.
        durable = WriteConcern(w="majority", j=True)
        self._codes = db.get_collection("enrolment_codes", write_concern=durable)
        self._devices = db.get_collection("devices", write_concern=durable)
        self._max_attempts = max_attempts

    async def create_indexes(self) -> None:
        await self._codes.create_index("expires_at", expireAfterSeconds=0, name="ttl")
        await self._codes.create_index("person_id", name="person")
        await self._devices.create_index("person_id", name="person")
        await self._devices.create_index("identity_key", unique=True, name="identity_key")

    async def add_code(
        self, lookup: str, secret_hash: str, person_id: str, now: datetime, expires_at: datetime
    ) -> None:
        """Store a new code.

        Raises:
            DuplicateKey: the lookup part is taken; draw another code.
        """
        try:
            await self._codes.insert_one(
                {
                    "_id": lookup,
                    "secret_hash": secret_hash,
                    "person_id": person_id,
                    "created_at": now,
                    "expires_at": expires_at,
                    "attempts": 0,
                    "locked": False,
                }
            )
        except DuplicateKeyError:
            raise DuplicateKey(lookup) from None

    async def code_state(self, lookup: str) -> Doc | None:
        return await self._codes.find_one({"_id": lookup}, {"secret_hash": 0})

    async def redeem(
        self,
        lookup: str,
        secret_hash: str,
        identity_key: bytes,
        kind: DeviceKind,
        now: datetime,
    ) -> tuple[Redemption, Device | None]:
        """Spend a code and create the device it enrols, atomically.

        A wrong secret counts an attempt against the code; after
        ``max_attempts`` the code is locked for good.

        Raises:
            DuplicateKey: this identity key is already enrolled.
        """
        doc = await self._codes.find_one({"_id": lookup})
        if doc is None:
            return Redemption.UNKNOWN, None
        if doc.get("locked"):
            return Redemption.LOCKED, None
        if doc.get("used_at") is not None:
            return Redemption.USED, None
        if doc["expires_at"] <= now:
            return Redemption.EXPIRED, None
        if not hmac.compare_digest(doc["secret_hash"], secret_hash):
            await self._codes.update_one({"_id": lookup}, {"$inc": {"attempts": 1}})
            await self._codes.update_one(
                {"_id": lookup, "attempts": {"$gte": self._max_attempts}},
                {"$set": {"locked": True}},
            )
            return Redemption.MISMATCH, None
        device_doc = {
            "_id": new_id("d"),
            "person_id": doc["person_id"],
            "kind": kind.value,
            "identity_key": identity_key,
            "created_at": now,
        }
        for _ in range(SPEND_TRIES):
            if await self._spend(lookup, device_doc, now):
                return Redemption.OK, _device(device_doc)
            # The transaction did not see an unused code. Under load its snapshot
            # can trail the latest writes: look again outside it before deciding.
            again = await self._codes.find_one({"_id": lookup})
            if again is None or again.get("used_at") is not None or again.get("locked"):
                return Redemption.USED, None
        return Redemption.USED, None

    async def _spend(self, lookup: str, device_doc: Doc, now: datetime) -> bool:
        """Mark the code used and create the device, in one transaction."""
        async with self._client.start_session() as session:
            async with await session.start_transaction():
                spent = await self._codes.update_one(
                    {"_id": lookup, "used_at": None, "locked": False},
                    {"$set": {"used_at": now, "device_id": device_doc["_id"]}},
                    session=session,
                )
                if spent.modified_count != 1:
                    return False
                try:
                    await self._devices.insert_one(device_doc, session=session)
                except DuplicateKeyError:
                    raise DuplicateKey("identity_key") from None
        return True

    async def device(self, device_id: str) -> Device | None:
        doc = await self._devices.find_one({"_id": device_id})
        return _device(doc) if doc else None

    async def devices(self, device_ids: list[str]) -> dict[str, Device]:
        """Device id → device, for the ids that exist (revoked ones included)."""
        cursor = self._devices.find({"_id": {"$in": device_ids}})
        return {doc["_id"]: _device(doc) async for doc in cursor}

    async def devices_of(self, person_id: str) -> list[Device]:
        cursor = self._devices.find({"person_id": person_id, "revoked_at": None})
        return [_device(doc) async for doc in cursor.sort("created_at", ASCENDING)]

    async def remove_person(self, person_id: str) -> list[str]:
        """Delete a person's codes and devices; returns the removed device ids."""
        await self._codes.delete_many({"person_id": person_id})
        ids = [d["_id"] async for d in self._devices.find({"person_id": person_id}, {"_id": 1})]
        await self._devices.delete_many({"person_id": person_id})
        return ids

    async def devices_of_people(self, person_ids: Sequence[str]) -> list[Device]:
        """Every live device of these people."""
        cursor = self._devices.find({"person_id": {"$in": list(person_ids)}, "revoked_at": None})
        return [_device(doc) async for doc in cursor]

    async def existing_devices(self, device_ids: list[str]) -> dict[str, str]:
        """Device id → person id, for the ids that exist and are not revoked."""
        cursor = self._devices.find(
            {"_id": {"$in": device_ids}, "revoked_at": None}, {"person_id": 1}
        )
        return {doc["_id"]: doc["person_id"] async for doc in cursor}
