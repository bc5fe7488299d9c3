"""Prekey repository: each device's signed prekey and one-time prekeys (X3DH §3.2).

Documents::

    signed_prekeys   {_id: device id, key_id, key, signature, updated_at}
    one_time_prekeys {_id: "<device id>:<key id>", device_id, key_id, key}

A bundle fetch takes the device's oldest one-time prekey by deleting it by
``_id``: of concurrent fetches that picked the same prekey, exactly one
deletes it and the others take the next one, so two fetches can never
receive the same prekey (X3DH §4.4 forbids reuse). Not ``find_one_and_delete``:
SecantusDB 0.7 re-checks a findAndModify's filter by scanning the whole
collection, so each fetch cost time in proportion to every device's prekeys
(docs/performance.md, "findAndModify").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, InsertOne, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

Doc = dict[str, Any]

TAKE_CANDIDATES = 8
"""Oldest prekeys read per attempt: concurrent fetches fall back on the next ones."""
TAKE_ATTEMPTS = 4


@dataclass(frozen=True)
class SignedPrekey:
    key_id: int
    key: bytes
    signature: bytes


@dataclass(frozen=True)
class OneTimePrekey:
    key_id: int
    key: bytes


class PrekeyRepository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._signed = db["signed_prekeys"]
        self._one_time = db["one_time_prekeys"]
        self._counts = db["prekey_counts"]
        """``{_id: device id, n}``: one-time prekeys held, kept by :meth:`publish` and
        :meth:`take_one_time`, so that a login reads it with others' in one query."""

    async def create_indexes(self) -> None:
        await self._one_time.create_index(
            [("device_id", ASCENDING), ("key_id", ASCENDING)], name="device"
        )

    async def publish(
        self,
        device_id: str,
        signed: SignedPrekey | None,
        one_time: Sequence[OneTimePrekey],
        now: datetime,
    ) -> int:
        """Replace the signed prekey (if given) and add one-time prekeys.

        A one-time prekey id that is already stored keeps its stored key (an
        upload retried after a timeout changes nothing).

        Returns:
            How many one-time prekeys the device now has on the server.
        """
        if signed is not None:
            await self._signed.replace_one(
                {"_id": device_id},
                {
                    "key_id": signed.key_id,
                    "key": signed.key,
                    "signature": signed.signature,
                    "updated_at": now,
                },
                upsert=True,
            )
        if one_time:
            ops: list[InsertOne[Doc] | ReplaceOne[Doc]] = [
                InsertOne(
                    {
                        "_id": f"{device_id}:{k.key_id}",
                        "device_id": device_id,
                        "key_id": k.key_id,
                        "key": k.key,
                    }
                )
                for k in one_time
            ]
            try:
                await self._one_time.bulk_write(ops, ordered=False)
            except BulkWriteError as exc:
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise
        held = await self.count(device_id)
        await self._counts.replace_one({"_id": device_id}, {"n": held}, upsert=True)
        return held

    async def signed_prekey(self, device_id: str) -> SignedPrekey | None:
        doc = await self._signed.find_one({"_id": device_id})
        if doc is None:
            return None
        return SignedPrekey(doc["key_id"], bytes(doc["key"]), bytes(doc["signature"]))

    async def count(self, device_id: str) -> int:
        return await self._one_time.count_documents({"device_id": device_id})

    async def counts(self, device_ids: list[str]) -> dict[str, int]:
        """One-time prekeys held per device, in one query (counted for those without)."""
        found = {
            d["_id"]: max(0, int(d["n"]))
            async for d in self._counts.find({"_id": {"$in": device_ids}})
        }
        for device_id in device_ids:
            if device_id not in found:  # never published since counts were kept
                found[device_id] = await self.count(device_id)
                await self._counts.replace_one(
                    {"_id": device_id}, {"n": found[device_id]}, upsert=True
                )
        return found

    async def take_one_time(self, device_id: str) -> OneTimePrekey | None:
        """Remove and return the device's oldest one-time prekey, atomically.

        Returns:
            The prekey, or None when the device has none left (or, under a
            burst of fetches for one device, none could be claimed after
            :data:`TAKE_ATTEMPTS` reads: the bundle then goes without one,
            as X3DH §3.3 allows).
        """
        for _ in range(TAKE_ATTEMPTS):
            cursor = (
                self._one_time.find({"device_id": device_id}, {"key_id": 1, "key": 1})
                .sort("key_id", ASCENDING)
                .limit(TAKE_CANDIDATES)
            )
            candidates = [doc async for doc in cursor]
            if not candidates:
                return None
            for doc in candidates:
                claimed = await self._one_time.delete_one({"_id": doc["_id"]})
                if claimed.deleted_count == 1:
                    await self._counts.update_one({"_id": device_id}, {"$inc": {"n": -1}})
                    return OneTimePrekey(doc["key_id"], bytes(doc["key"]))
        return None

    async def forget_device(self, device_id: str) -> None:
        await self._signed.delete_one({"_id": device_id})
        await self._one_time.delete_many({"device_id": device_id})
        await self._counts.delete_one({"_id": device_id})
