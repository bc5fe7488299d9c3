"""Conversation repository: who is in a conversation and its sequence counter.

Documents: ``conversations {_id: "c_...", kind, uai, title, members: [person
ids], owners: [person ids], class_id, acknowledge, seq, created_by,
created_at, updated_at, archived_at}``.

``seq`` is the last published sequence number: the sequencer
(``server.sequencer``) gives numbers from memory, the unique index
``(conversation, seq)`` of ``messages`` keeps them distinct, and once a batch
is stored :meth:`raise_seqs` lifts each counter to its last stored message
(``$max``), so the counter never names a message that is not stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING, UpdateOne, WriteConcern
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from storage.ids import derived_id, new_id

Doc = dict[str, Any]


class ConversationKind(StrEnum):
    DIRECT = "direct"
    GROUP = "group"
    CLASS = "class"
    ANNOUNCEMENT = "announcement"


@dataclass(frozen=True)
class Conversation:
    id: str
    kind: ConversationKind
    uai: str
    title: str
    members: tuple[str, ...]
    owners: tuple[str, ...]
    seq: int
    created_by: str
    created_at: datetime
    class_id: str | None = None
    acknowledge: bool = False
    archived_at: datetime | None = None


def _conversation(doc: Doc) -> Conversation:
    return Conversation(
        id=doc["_id"],
        kind=ConversationKind(doc["kind"]),
        uai=doc["uai"],
        title=doc.get("title", ""),
        members=tuple(doc["members"]),
        owners=tuple(doc.get("owners", ())),
        seq=int(doc["seq"]),
        created_by=doc["created_by"],
        created_at=doc["created_at"],
        class_id=doc.get("class_id"),
        acknowledge=bool(doc.get("acknowledge", False)),
        archived_at=doc.get("archived_at"),
    )


def direct_id(a: str, b: str) -> str:
    """The one direct conversation of two people (order does not matter)."""
    return derived_id("c", "direct", *sorted((a, b)))


class ConversationRepository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._conversations = db.get_collection(
            "conversations", write_concern=WriteConcern(w="majority", j=True)
        )

    async def create_indexes(self) -> None:
        await self._conversations.create_index([("members", ASCENDING)], name="members")
        await self._conversations.create_index([("class_id", ASCENDING)], name="class")
        await self._conversations.create_index([("updated_at", ASCENDING)], name="updated")

    async def create(
        self,
        kind: ConversationKind,
        uai: str,
        title: str,
        members: Sequence[str],
        owners: Sequence[str],
        created_by: str,
        now: datetime,
        class_id: str | None = None,
        acknowledge: bool = False,
    ) -> tuple[Conversation, bool]:
        """Create a conversation; a direct one is unique per pair of people.

        Returns:
            The conversation and whether it was created now (False: it existed).
        """
        ident = (
            direct_id(members[0], members[1]) if kind == ConversationKind.DIRECT else new_id("c")
        )
        doc: Doc = {
            "_id": ident,
            "kind": kind.value,
            "uai": uai,
            "title": title,
            "members": list(dict.fromkeys(members)),
            "owners": list(dict.fromkeys(owners)),
            "class_id": class_id,
            "acknowledge": acknowledge,
            "seq": 0,
            "created_by": created_by,
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self._conversations.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.get(ident)
            if existing is None:  # pragma: no cover - deleted in between
                raise
            return existing, False
        return _conversation(doc), True

    async def get(self, conversation_id: str) -> Conversation | None:
        doc = await self._conversations.find_one({"_id": conversation_id})
        return _conversation(doc) if doc else None

    async def get_many(self, conversation_ids: Sequence[str]) -> dict[str, Conversation]:
        """The conversations with these ids that exist, in one query."""
        cursor = self._conversations.find({"_id": {"$in": list(conversation_ids)}})
        return {doc["_id"]: _conversation(doc) async for doc in cursor}

    async def of_person(self, person_id: str, limit: int = 1000) -> list[Conversation]:
        cursor = (
            self._conversations.find({"members": person_id, "archived_at": None})
            .sort("updated_at", -1)
            .limit(limit)
        )
        return [_conversation(doc) async for doc in cursor]

    async def of_class(self, class_id: str) -> list[Conversation]:
        cursor = self._conversations.find({"class_id": class_id, "archived_at": None})
        return [_conversation(doc) async for doc in cursor]

    async def archive_classes_before(
        self, cutoff: datetime, now: datetime, dry_run: bool, school: str | None
    ) -> dict[str, int]:
        """Archive the class channels created before ``cutoff`` (a school year's end).

        Returns:
            School (UAI) → number of channels archived (or that would be).
        """
        query: Doc = {
            "kind": ConversationKind.CLASS.value,
            "archived_at": None,
            "created_at": {"$lt": cutoff},
        }
        if school is not None:
            query["uai"] = school
        counts: dict[str, int] = {}
        async for doc in self._conversations.find(query, {"uai": 1}):
            counts[doc["uai"]] = counts.get(doc["uai"], 0) + 1
            if not dry_run:
                await self._conversations.update_one(
                    {"_id": doc["_id"], "archived_at": None}, {"$set": {"archived_at": now}}
                )
        return counts

    async def class_ids_of_schools(self, uais: Sequence[str]) -> list[str]:
        """Classes of these schools that have a live class channel."""
        cursor = self._conversations.find(
            {"uai": {"$in": list(uais)}, "kind": ConversationKind.CLASS.value, "archived_at": None},
            {"class_id": 1},
        )
        return sorted({doc["class_id"] async for doc in cursor if doc.get("class_id")})

    async def active_since(self, since: datetime) -> AsyncIterator[Conversation]:
        """Conversations that received something since ``since``."""
        async for doc in self._conversations.find({"updated_at": {"$gte": since}}):
            yield _conversation(doc)

    async def of_people(self, person_ids: list[str]) -> dict[str, tuple[str, ...]]:
        """Person id → ids of their live (not archived) conversations, in one query."""
        wanted = set(person_ids)
        found: dict[str, list[str]] = {p: [] for p in person_ids}
        cursor = self._conversations.find(
            {"members": {"$in": person_ids}, "archived_at": None}, {"members": 1}
        )
        async for doc in cursor:
            for member in wanted.intersection(doc["members"]):
                found[member].append(doc["_id"])
        return {p: tuple(ids) for p, ids in found.items()}

    async def seqs(self, conversation_ids: Sequence[str]) -> dict[str, int]:
        """Conversation id → last published seq, for those that exist."""
        cursor = self._conversations.find({"_id": {"$in": list(conversation_ids)}}, {"seq": 1})
        return {doc["_id"]: int(doc["seq"]) async for doc in cursor}

    async def raise_seqs(self, heads: Mapping[str, int], now: datetime) -> None:
        """Publish stored seqs: each counter rises to its head, never falls (``$max``)."""
        if not heads:
            return
        await self._conversations.bulk_write(
            [
                UpdateOne({"_id": ident}, {"$max": {"seq": seq}, "$set": {"updated_at": now}})
                for ident, seq in heads.items()
            ],
            ordered=False,
        )

    async def set_members(
        self, conversation_id: str, members: Sequence[str], owners: Sequence[str], now: datetime
    ) -> None:
        await self._conversations.update_one(
            {"_id": conversation_id},
            {
                "$set": {
                    "members": list(dict.fromkeys(members)),
                    "owners": list(dict.fromkeys(owners)),
                    "updated_at": now,
                }
            },
        )

    async def remove_person(self, person_id: str, now: datetime) -> None:
        """Take a person out of every conversation (erasure, departure)."""
        await self._conversations.update_many(
            {"$or": [{"members": person_id}, {"owners": person_id}]},
            {"$pull": {"members": person_id, "owners": person_id}, "$set": {"updated_at": now}},
        )
