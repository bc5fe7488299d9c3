"""Directory repository: schools, classes and people, with their links.

Documents::

    schools  {_id: UAI, name, timezone, created_at}
    classes  {_id: "UAI/name", uai, name}
    people   {_id: person id, uai, external_id, role, given_name, family_name,
              email, classes: [class ids], children: [person ids], email_only,
              created_at, updated_at, left_at}

An import is all or nothing: every record is written inside one transaction,
and links to children are resolved in it; a child that does not exist aborts
the whole import (``ImportRejected``) and nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from storage.errors import ImportRejected, RowProblem
from storage.ids import new_id
from storage.models import Person, PersonRecord, Role, School, SchoolSettings

Doc = dict[str, Any]


def class_id(uai: str, name: str) -> str:
    return f"{uai}/{name}"


@dataclass(frozen=True)
class ImportSummary:
    """What an import did: counts of schools, classes and people written."""

    schools: int
    classes: int
    people_created: int
    people_updated: int
    uais: tuple[str, ...] = ()
    """The schools the import touched."""


@dataclass(frozen=True)
class NumberedRecord:
    """A record and the line of the source it came from (for error messages)."""

    line: int
    record: PersonRecord


def _person(doc: Doc) -> Person:
    return Person(
        id=doc["_id"],
        uai=doc["uai"],
        external_id=doc["external_id"],
        role=Role(doc["role"]),
        given_name=doc["given_name"],
        family_name=doc["family_name"],
        email=doc.get("email"),
        classes=tuple(doc.get("classes", ())),
        children=tuple(doc.get("children", ())),
        email_only=doc.get("email_only", False),
        left_at=doc.get("left_at"),
    )


class DirectoryRepository:
    """Reads and writes the directory aggregate."""

    def __init__(self, client: AsyncMongoClient[Doc], db: AsyncDatabase[Doc]) -> None:
        self._client = client
        self._schools = db["schools"]
        self._classes = db["classes"]
        self._people = db["people"]

    async def create_indexes(self) -> None:
        await self._people.create_index(
            [("uai", ASCENDING), ("external_id", ASCENDING)], unique=True, name="uai_external_id"
        )
        await self._people.create_index([("classes", ASCENDING)], name="classes")
        await self._people.create_index([("children", ASCENDING)], name="children")
        await self._classes.create_index([("uai", ASCENDING)], name="uai")

    async def school(self, uai: str) -> School | None:
        doc = await self._schools.find_one({"_id": uai})
        if doc is None:
            return None
        return School(uai=doc["_id"], name=doc["name"], timezone=doc["timezone"])

    async def school_settings(self, uai: str) -> SchoolSettings:
        doc = await self._schools.find_one({"_id": uai}, {"settings": 1})
        return SchoolSettings.model_validate((doc or {}).get("settings") or {})

    async def set_school_settings(self, uai: str, settings: SchoolSettings) -> bool:
        result = await self._schools.update_one(
            {"_id": uai}, {"$set": {"settings": settings.model_dump()}}
        )
        return result.matched_count == 1

    async def person(self, person_id: str) -> Person | None:
        doc = await self._people.find_one({"_id": person_id})
        return _person(doc) if doc else None

    async def people(self, person_ids: Sequence[str]) -> list[Person]:
        """The people with these ids that exist, in no particular order."""
        cursor = self._people.find({"_id": {"$in": list(dict.fromkeys(person_ids))}})
        return [_person(doc) async for doc in cursor]

    async def person_by_external_id(self, uai: str, external_id: str) -> Person | None:
        doc = await self._people.find_one({"uai": uai, "external_id": external_id})
        return _person(doc) if doc else None

    async def people_of_school(self, uai: str, limit: int = 1000) -> list[Person]:
        cursor = self._people.find({"uai": uai}).sort("_id", ASCENDING).limit(limit)
        return [_person(doc) async for doc in cursor]

    async def people_in_class(self, class_id: str) -> list[Person]:
        """Pupils and teachers of a class (``classes`` contains it)."""
        cursor = self._people.find({"classes": class_id, "left_at": None}).sort("_id", ASCENDING)
        return [_person(doc) async for doc in cursor]

    async def parents_of(self, pupil_ids: Sequence[str]) -> list[Person]:
        cursor = self._people.find({"children": {"$in": list(pupil_ids)}, "left_at": None})
        return [_person(doc) async for doc in cursor.sort("_id", ASCENDING)]

    async def remove_person(self, person_id: str) -> bool:
        """Delete a person and the links that point at them; True if they existed."""
        result = await self._people.delete_one({"_id": person_id})
        await self._people.update_many({"children": person_id}, {"$pull": {"children": person_id}})
        return result.deleted_count == 1

    async def apply_import(
        self,
        source: str,
        records: Sequence[NumberedRecord],
        schools: Iterable[School],
        now: datetime,
    ) -> ImportSummary:
        """Write schools and people in one transaction; all or nothing.

        Args:
            source: the file name or ``"request"``, for error messages.
            records: validated records with their source line numbers.
            schools: schools to create or rename (name, time zone).
            now: the time of the import.

        Raises:
            ImportRejected: a school or child is unknown; nothing was written.
        """
        async with self._client.start_session() as session:
            async with await session.start_transaction():
                return await self._import_in(session, source, records, list(schools), now)

    async def _import_in(
        self,
        session: AsyncClientSession,
        source: str,
        records: Sequence[NumberedRecord],
        schools: list[School],
        now: datetime,
    ) -> ImportSummary:
        school_ops = [
            UpdateOne(
                {"_id": s.uai},
                {
                    "$set": {"name": s.name, "timezone": s.timezone},
                    "$setOnInsert": {"created_at": now},
                },
                upsert=True,
            )
            for s in schools
        ]
        if school_ops:
            await self._schools.bulk_write(school_ops, session=session)
        known = {
            doc["_id"]
            async for doc in self._schools.find(
                {"_id": {"$in": sorted({n.record.uai for n in records})}}, session=session
            )
        }
        problems = [
            RowProblem(n.line, f"unknown school {n.record.uai}: give school_name to create it")
            for n in records
            if n.record.uai not in known
        ]
        if problems:
            raise ImportRejected(source, problems)

        class_names = {(n.record.uai, c) for n in records for c in n.record.classes}
        if class_names:
            await self._classes.bulk_write(
                [
                    UpdateOne(
                        {"_id": class_id(uai, name)},
                        {"$setOnInsert": {"uai": uai, "name": name}},
                        upsert=True,
                    )
                    for uai, name in sorted(class_names)
                ],
                session=session,
            )

        person_ops = [
            UpdateOne(
                {"uai": n.record.uai, "external_id": n.record.external_id},
                {
                    "$set": {
                        "role": n.record.role.value,
                        "given_name": n.record.given_name,
                        "family_name": n.record.family_name,
                        "email": n.record.email,
                        "classes": [class_id(n.record.uai, c) for c in n.record.classes],
                        "email_only": n.record.email_only,
                        "updated_at": now,
                    },
                    "$setOnInsert": {"_id": new_id("p"), "created_at": now, "children": []},
                },
                upsert=True,
            )
            for n in records
        ]
        result = await self._people.bulk_write(person_ops, session=session)

        await self._link_children(session, source, records, now)
        return ImportSummary(
            schools=len(school_ops),
            classes=len(class_names),
            people_created=result.upserted_count,
            people_updated=result.matched_count,
            uais=tuple(sorted({n.record.uai for n in records})),
        )

    async def _link_children(
        self,
        session: AsyncClientSession,
        source: str,
        records: Sequence[NumberedRecord],
        now: datetime,
    ) -> None:
        parents = [n for n in records if n.record.children]
        if not parents:
            return
        wanted = {(n.record.uai, c) for n in parents for c in n.record.children}
        ids: dict[tuple[str, str], str] = {}
        query = {
            "$or": [{"uai": uai, "external_id": ext} for uai, ext in sorted(wanted)],
            "role": Role.PUPIL.value,
        }
        async for doc in self._people.find(query, {"uai": 1, "external_id": 1}, session=session):
            ids[(doc["uai"], doc["external_id"])] = doc["_id"]
        problems = [
            RowProblem(n.line, f"child {child} is not a pupil of {n.record.uai}")
            for n in parents
            for child in n.record.children
            if (n.record.uai, child) not in ids
        ]
        if problems:
            raise ImportRejected(source, problems)
        await self._people.bulk_write(
            [
                UpdateOne(
                    {"uai": n.record.uai, "external_id": n.record.external_id},
                    {
                        "$set": {
                            "children": [ids[(n.record.uai, c)] for c in n.record.children],
                            "updated_at": now,
                        }
                    },
                )
                for n in parents
            ],
            session=session,
        )
