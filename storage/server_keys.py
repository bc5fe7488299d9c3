"""Server secret keys, by purpose, with rotation (franking stamps, device sessions).

Documents: ``server_keys {_id: "<purpose>:<key id>", purpose, key_id, secret,
created_at, retired_at}``. Every node of a deployment reads the same keys, so
a stamp or a session token made by one node verifies on another. The newest
key of a purpose signs; older ones that are not retired still verify
(rotation, like ``MultiFernet``). Backed up with the database
(docs/operations.md): losing them invalidates stamps and sessions, nothing else.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

Doc = dict[str, Any]
SECRET_BYTES = 32


@dataclass(frozen=True)
class ServerKey:
    key_id: int
    secret: bytes = field(repr=False)
    created_at: datetime


class ServerKeyRepository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._keys = db["server_keys"]

    async def create_indexes(self) -> None:
        await self._keys.create_index([("purpose", 1), ("key_id", DESCENDING)], name="purpose")

    async def active(self, purpose: str, now: datetime) -> list[ServerKey]:
        """The purpose's keys that still verify, newest first; creates the first one."""
        keys = await self._load(purpose)
        if not keys:
            await self._insert(purpose, 1, now)
            keys = await self._load(purpose)
        return keys

    async def rotate(self, purpose: str, now: datetime, keep: int = 1) -> ServerKey:
        """Add a new current key; retire all but the ``keep`` newest older ones."""
        keys = await self._load(purpose)
        next_id = (keys[0].key_id + 1) if keys else 1
        await self._insert(purpose, next_id, now)
        for old in keys[keep:]:
            await self._keys.update_one(
                {"_id": f"{purpose}:{old.key_id}"}, {"$set": {"retired_at": now}}
            )
        return (await self._load(purpose))[0]

    async def _insert(self, purpose: str, key_id: int, now: datetime) -> None:
        try:
            await self._keys.insert_one(
                {
                    "_id": f"{purpose}:{key_id}",
                    "purpose": purpose,
                    "key_id": key_id,
                    "secret": secrets.token_bytes(SECRET_BYTES),
                    "created_at": now,
                }
            )
        except DuplicateKeyError:
            pass  # another node created it first: use theirs

    async def _load(self, purpose: str) -> list[ServerKey]:
        cursor = self._keys.find({"purpose": purpose, "retired_at": None}).sort(
            "key_id", DESCENDING
        )
        return [
            ServerKey(doc["key_id"], bytes(doc["secret"]), doc["created_at"])
            async for doc in cursor
        ]
