"""Legal holds: suspend the deletion of a person's or a conversation's data.

A hold is placed by the DPO when data must be kept beyond its retention, for
instance at a judicial authority's request or while a complaint is handled
(RGPD art. 17(3)(e), art. 18(2)). Every retention job and every erasure asks
:meth:`LegalHoldRepository.held` first. A hold has a reason and an end date;
after it, the hold no longer suspends anything. Placing and lifting holds is
recorded in the audit log by ``server/``.

Documents::

    legal_holds {_id: "h_...", kind: person|conversation, subject, school,
                 reason, until, created_at, created_by, released_at}
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from storage.ids import new_id

Doc = dict[str, Any]


class HoldKind(StrEnum):
    PERSON = "person"
    CONVERSATION = "conversation"


def _active(now: datetime) -> Doc:
    return {"until": {"$gt": now}, "released_at": None}


class LegalHoldRepository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._holds = db["legal_holds"]

    async def create_indexes(self) -> None:
        await self._holds.create_index([("subject", ASCENDING)], name="subject")

    async def place(
        self,
        kind: HoldKind,
        subject: str,
        school: str,
        reason: str,
        until: datetime,
        created_by: str,
        now: datetime,
    ) -> Doc:
        """Place a hold; returns its document."""
        doc: Doc = {
            "_id": new_id("h"),
            "kind": kind.value,
            "subject": subject,
            "school": school,
            "reason": reason,
            "until": until,
            "created_at": now,
            "created_by": created_by,
            "released_at": None,
        }
        await self._holds.insert_one(doc)
        return doc

    async def release(self, hold_id: str, now: datetime) -> Doc | None:
        """Lift a hold before its end date; returns it, or None if unknown or lifted."""
        return await self._holds.find_one_and_update(
            {"_id": hold_id, "released_at": None},
            {"$set": {"released_at": now}},
            return_document=True,
        )

    async def get(self, hold_id: str) -> Doc | None:
        return await self._holds.find_one({"_id": hold_id})

    async def held(self, subjects: Iterable[str], now: datetime) -> set[str]:
        """Which of ``subjects`` (person or conversation ids) are under an active hold."""
        wanted = list(subjects)
        if not wanted:
            return set()
        cursor = self._holds.find({"subject": {"$in": wanted}, **_active(now)}, {"subject": 1})
        return {doc["subject"] async for doc in cursor}

    async def holds(self, school: str | None, now: datetime, active_only: bool = True) -> list[Doc]:
        query: Doc = _active(now) if active_only else {}
        if school is not None:
            query["school"] = school
        return [doc async for doc in self._holds.find(query).sort("created_at", ASCENDING)]

    async def forget_subject(self, subject: str) -> int:
        """Delete the ended holds on an erased subject (an active one blocks erasure)."""
        result = await self._holds.delete_many({"subject": subject})
        return result.deleted_count
