"""Job leases: with several Carnet nodes, exactly one runs each scheduled job.

Documents::

    leases {_id: job name, owner, lease_until, due_at, last_success, last_result}

:meth:`LeaseRepository.acquire` is one ``find_one_and_update`` whose filter
says "due, and not held by a live lease"; with ``upsert`` the first run
creates the document. Two nodes racing for the same job: one update wins,
the other matches nothing (or hits the unique ``_id`` on upsert) and skips.
A node that dies holding a lease loses it when ``lease_until`` passes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

Doc = dict[str, Any]


class LeaseRepository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._leases = db["leases"]

    async def create_indexes(self) -> None:
        """Nothing beyond ``_id``: one document per job."""

    async def acquire(self, job: str, owner: str, now: datetime, hold_for: timedelta) -> bool:
        """Take the lease of ``job`` if it is due and free; True if this owner has it."""
        try:
            doc = await self._leases.find_one_and_update(
                {
                    "_id": job,
                    "$and": [
                        {"$or": [{"due_at": {"$lte": now}}, {"due_at": None}]},
                        {"$or": [{"lease_until": {"$lte": now}}, {"lease_until": None}]},
                    ],
                },
                {"$set": {"owner": owner, "lease_until": now + hold_for}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return False
        return doc is not None and doc.get("owner") == owner

    async def complete(
        self, job: str, owner: str, now: datetime, next_due: datetime, result: Doc
    ) -> bool:
        """Release the lease after a successful run and schedule the next one."""
        outcome = await self._leases.update_one(
            {"_id": job, "owner": owner},
            {
                "$set": {
                    "lease_until": now,
                    "due_at": next_due,
                    "last_success": now,
                    "last_result": result,
                }
            },
        )
        return outcome.modified_count == 1

    async def release(self, job: str, owner: str, now: datetime) -> None:
        """Give the lease back after a failed run (the job stays due)."""
        await self._leases.update_one({"_id": job, "owner": owner}, {"$set": {"lease_until": now}})

    async def state(self) -> list[Doc]:
        return [doc async for doc in self._leases.find({}).sort("_id", 1)]
