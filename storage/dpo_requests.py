"""Data subject requests and their deadlines (RGPD art. 12(3), 15, 16, 17).

The controller answers "without undue delay and in any event within one
month of receipt" (art. 12(3)); :func:`deadline` is that month, counted as
calendar months (the same day of the next month, or its last day).

Documents::

    dpo_requests {_id: "r_...", kind, person_id, school, received_at, deadline,
                  status: open|done|refused, outcome, note, closed_at,
                  created_by}

When a person is erased, their requests stay (the controller must show it
answered them, art. 5(2)) but no longer name them: ``person_id`` becomes
``"erased"`` and ``note`` is cleared.
"""

from __future__ import annotations

import calendar
from datetime import datetime
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from storage.ids import new_id

Doc = dict[str, Any]
ERASED = "erased"


class RequestKind(StrEnum):
    ACCESS = "access"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    RESTRICTION = "restriction"
    OBJECTION = "objection"


class RequestStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    REFUSED = "refused"


def deadline(received_at: datetime) -> datetime:
    """One calendar month after ``received_at`` (art. 12(3))."""
    year, month = divmod(received_at.month, 12)
    year, month = received_at.year + year, month + 1
    day = min(received_at.day, calendar.monthrange(year, month)[1])
    return received_at.replace(year=year, month=month, day=day)


class RequestRepository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._requests = db["dpo_requests"]

    async def create_indexes(self) -> None:
        await self._requests.create_index(
            [("school", ASCENDING), ("status", ASCENDING), ("deadline", ASCENDING)],
            name="school_status_deadline",
        )
        await self._requests.create_index([("person_id", ASCENDING)], name="person")

    async def record(
        self,
        kind: RequestKind,
        person_id: str,
        school: str,
        received_at: datetime,
        note: str,
        created_by: str,
    ) -> Doc:
        doc: Doc = {
            "_id": new_id("r"),
            "kind": kind.value,
            "person_id": person_id,
            "school": school,
            "received_at": received_at,
            "deadline": deadline(received_at),
            "status": RequestStatus.OPEN.value,
            "outcome": None,
            "note": note,
            "closed_at": None,
            "created_by": created_by,
        }
        await self._requests.insert_one(doc)
        return doc

    async def get(self, request_id: str) -> Doc | None:
        return await self._requests.find_one({"_id": request_id})

    async def close(
        self, request_id: str, status: RequestStatus, outcome: str, now: datetime
    ) -> Doc | None:
        """Set a request's status and outcome; returns it, or None if unknown."""
        closed_at = None if status is RequestStatus.OPEN else now
        return await self._requests.find_one_and_update(
            {"_id": request_id},
            {"$set": {"status": status.value, "outcome": outcome, "closed_at": closed_at}},
            return_document=True,
        )

    async def listing(
        self,
        school: str | None,
        now: datetime,
        status: RequestStatus | None = None,
        overdue_only: bool = False,
        limit: int = 1000,
    ) -> list[Doc]:
        """Requests, oldest deadline first; ``overdue_only``: open and past their deadline."""
        query: Doc = {}
        if school is not None:
            query["school"] = school
        if status is not None:
            query["status"] = status.value
        if overdue_only:
            query.update(status=RequestStatus.OPEN.value, deadline={"$lt": now})
        cursor = self._requests.find(query).sort("deadline", ASCENDING).limit(limit)
        return [doc async for doc in cursor]

    async def of_person(self, person_id: str) -> list[Doc]:
        return [doc async for doc in self._requests.find({"person_id": person_id})]

    async def anonymise_person(self, person_id: str) -> int:
        """Keep an erased person's requests without naming them (art. 5(2) vs. 17)."""
        result = await self._requests.update_many(
            {"person_id": person_id}, {"$set": {"person_id": ERASED, "note": ""}}
        )
        return result.modified_count

    async def purge_closed_before(self, cutoff: datetime) -> int:
        result = await self._requests.delete_many(
            {"status": {"$ne": RequestStatus.OPEN.value}, "closed_at": {"$lt": cutoff}}
        )
        return result.deleted_count

    async def count_closed_before(self, cutoff: datetime, school: str | None) -> dict[str, int]:
        query: Doc = {"status": {"$ne": RequestStatus.OPEN.value}, "closed_at": {"$lt": cutoff}}
        if school is not None:
            query["school"] = school
        counts: dict[str, int] = {}
        async for doc in self._requests.find(query, {"school": 1}):
            counts[doc["school"]] = counts.get(doc["school"], 0) + 1
        return counts
