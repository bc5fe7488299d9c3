"""Prekey repository: each device's signed prekey and one-time prekeys (X3DH §3.2).

Documents::

    signed_prekeys   {_id: device id, key_id, key, signature, updated_at}
    one_time_prekeys {_id: "<device id>:<key id>", device_id, key_id, key}

A bundle fetch takes one one-time prekey with ``find_one_and_delete``: two
concurrent fetches can never receive the same one (X3DH §4.4 forbids reuse).
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
        return await self.count(device_id)

    async def signed_prekey(self, device_id: str) -> SignedPrekey | None:
        doc = await self._signed.find_one({"_id": device_id})
        if doc is None:
            return None
        return SignedPrekey(doc["key_id"], bytes(doc["key"]), bytes(doc["signature"]))

    async def count(self, device_id: str) -> int:
        return await self._one_time.count_documents({"device_id": device_id})

    async def take_one_time(self, device_id: str) -> OneTimePrekey | None:
        """Remove and return the device's oldest one-time prekey, atomically."""
        doc = await self._one_time.find_one_and_delete(
            {"device_id": device_id}, sort=[("key_id", ASCENDING)]
        )
        return OneTimePrekey(doc["key_id"], bytes(doc["key"])) if doc else None

    async def forget_device(self, device_id: str) -> None:
        await self._signed.delete_one({"_id": device_id})
        await self._one_time.delete_many({"device_id": device_id})
