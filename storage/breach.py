"""Breach scoping (RGPD art. 33(3)(a)): who and what a compromised key or account reached.

Given a device, a person or a school and a period, :meth:`BreachScope.scope`
lists the people (flagging minors: pupils), classes and conversations that
were reachable, the first question the CNIL asks within 72 hours:

- a device or person: the conversations they were a member of during the
  period, the classes they belong to (and those the conversations serve),
  the members of those conversations and classes, their family links, and
  the people whose devices exchanged queued envelopes or messages with
  them in the period;
- a school: everyone, every class and every conversation of the school.

Only metadata is consulted; content is end-to-end encrypted and was never
readable from the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

Doc = dict[str, Any]
MAX_PEOPLE = 100_000


@dataclass(frozen=True)
class Origin:
    """What was compromised: exactly one of device, person or school."""

    device_id: str | None = None
    person_id: str | None = None
    school: str | None = None


def _active(since: datetime, until: datetime) -> Doc:
    return {
        "created_at": {"$lte": until},
        "$or": [{"archived_at": None}, {"archived_at": {"$gte": since}}],
    }


class BreachScope:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._db = db

    async def create_indexes(self) -> None:
        """Nothing: queries use the directory's and messaging's indexes."""

    async def school_of(self, origin: Origin) -> str | None:
        """The school an origin belongs to (for scoping the DPO's token), or None."""
        if origin.school is not None:
            return origin.school
        person_id = origin.person_id
        if origin.device_id is not None:
            device = await self._db["devices"].find_one({"_id": origin.device_id})
            person_id = device["person_id"] if device else None
        if person_id is None:
            return None
        person = await self._db["people"].find_one({"_id": person_id}, {"uai": 1})
        return str(person["uai"]) if person else None

    async def scope(self, origin: Origin, since: datetime, until: datetime) -> Doc:
        """People, classes and conversations reachable from ``origin`` in the period."""
        people_ids: set[str] = set()
        classes: set[str] = set()
        if origin.school is not None:
            conversations = [
                doc
                async for doc in self._db["conversations"].find(
                    {"uai": origin.school, **_active(since, until)}, {"members": 0, "owners": 0}
                )
            ]
            people_query: Doc = {"uai": origin.school}
            classes = {d["_id"] async for d in self._db["classes"].find({"uai": origin.school})}
        else:
            conversations, people_query = await self._from_person(
                origin, since, until, people_ids, classes
            )
        people = [
            {
                "person_id": doc["_id"],
                "school": doc["uai"],
                "role": doc["role"],
                "name": f"{doc['given_name']} {doc['family_name']}",
                "minor": doc["role"] == "pupil",
                "classes": doc.get("classes", []),
            }
            async for doc in self._db["people"].find(people_query).sort("_id", 1).limit(MAX_PEOPLE)
        ]
        return {
            "people": people,
            "classes": sorted(classes),
            "conversations": [
                {"conversation": c["_id"], "kind": c.get("kind"), "school": c.get("uai")}
                for c in conversations
            ],
            "counts": {
                "people": len(people),
                "minors": sum(p["minor"] for p in people),
                "classes": len(classes),
                "conversations": len(conversations),
            },
        }

    async def _from_person(
        self,
        origin: Origin,
        since: datetime,
        until: datetime,
        people_ids: set[str],
        classes: set[str],
    ) -> tuple[list[Doc], Doc]:
        db = self._db
        if origin.device_id is not None:
            device = await db["devices"].find_one({"_id": origin.device_id})
            person_id = device["person_id"] if device else None
            devices = [origin.device_id]
        else:
            person_id = origin.person_id
            devices = [d["_id"] async for d in db["devices"].find({"person_id": person_id})]
        if person_id is None:
            return [], {"_id": {"$in": []}}
        person = await db["people"].find_one({"_id": person_id}) or {}
        people_ids.add(person_id)
        people_ids.update(person.get("children", []))
        classes.update(person.get("classes", []))
        async for parent in db["people"].find({"children": person_id}, {"_id": 1}):
            people_ids.add(parent["_id"])
        conversations = [
            doc
            async for doc in db["conversations"].find(
                {"members": person_id, **_active(since, until)}
            )
        ]
        for conversation in conversations:
            people_ids.update(conversation.get("members", []))
            if conversation.get("class_id"):
                classes.add(conversation["class_id"])
        period = {"created_at": {"$gte": since, "$lte": until}}
        exchanged: set[str] = set()
        async for env in db["envelopes"].find({"device_id": {"$in": devices}, **period}):
            people_ids.add(env.get("sender_person", ""))
        async for env in db["envelopes"].find({"sender_device": {"$in": devices}, **period}):
            exchanged.add(env.get("device_id", ""))
        async for msg in db["messages"].find({"sender_device": {"$in": devices}, **period}):
            exchanged.update(msg.get("recipients", []))
        async for msg in db["messages"].find({"recipients": {"$in": devices}, **period}):
            people_ids.add(msg.get("sender_person", ""))
        async for dev in db["devices"].find({"_id": {"$in": sorted(exchanged)}}):
            people_ids.add(dev["person_id"])
        query = {
            "$or": [{"_id": {"$in": sorted(people_ids)}}, {"classes": {"$in": sorted(classes)}}]
        }
        return conversations, query
