"""Moderation repositories: policies, blocks, reports, incident controls, notices (issue 5).

Documents (docs/moderation.md, "Server side")::

    school_policies   {_id: "<uai>:<version>", uai, version, document (JSON text),
                       by, at}                       one per revision, never edited
    blocks            {_id: "<blocker>:<blocked>", blocker, blocked, at}
    reports           {_id: "r_...", uai, conversation, seq, reporter, reporter_device,
                       sender_device, reported_person, ts, proof, state,
                       history: [{state, by, at}], body, created_at, decided_at, until}
    incident_controls {_id: "i_...", uai, action, scope, target, until, at, by,
                       lifted_at}
    notices           {_id: "n_...", node, devices: [device ids], frame (JSON text),
                       at, expires_at}           TTL: a short-lived relay between nodes

A policy revision is inserted with ``_id = uai:version``, so two directors
submitting the same next version cannot both win (the second gets
:class:`storage.errors.DuplicateKey`). A report's state moves with a
compare-and-set on the state it was read in. ``body`` is the plaintext the
reporter chose to hand over (RGPD art. 5(1)(c), 6(1)(e)); it is kept for the
school's moderators only, purged with the report by the retention job
(``reports``, ``created_at``), and never logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, WriteConcern
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from storage.errors import DuplicateKey
from storage.ids import new_id

Doc = dict[str, Any]
NOTICE_LIFETIME = timedelta(days=1)
MAX_LISTED = 500


@dataclass(frozen=True)
class PolicyRevision:
    """One stored revision of a school's policy document."""

    uai: str
    version: int
    document: str
    by: str
    at: datetime


class PolicyRepository:
    """Versioned policy documents per school (``school_policies``)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._c = db.get_collection("school_policies", write_concern=WriteConcern(w="majority"))

    async def create_indexes(self) -> None:
        await self._c.create_index([("uai", ASCENDING), ("version", DESCENDING)], name="latest")

    async def current(self, uai: str) -> PolicyRevision | None:
        """The latest revision of a school's policy, or ``None`` (defaults apply)."""
        doc = await self._c.find_one({"uai": uai}, sort=[("version", DESCENDING)])
        return _revision(doc) if doc else None

    async def current_of(self, uais: Sequence[str]) -> dict[str, PolicyRevision]:
        """The latest revision of each school that has one."""
        found: dict[str, PolicyRevision] = {}
        for uai in dict.fromkeys(uais):
            revision = await self.current(uai)
            if revision is not None:
                found[uai] = revision
        return found

    async def add(self, uai: str, version: int, document: str, by: str, now: datetime) -> None:
        """Store a new revision.

        Raises:
            DuplicateKey: this version of this school's policy already exists.
        """
        doc = {"_id": f"{uai}:{version}", "uai": uai, "version": version}
        try:
            await self._c.insert_one({**doc, "document": document, "by": by, "at": now})
        except DuplicateKeyError:
            raise DuplicateKey(f"{uai}:{version}") from None


def _revision(doc: Doc) -> PolicyRevision:
    return PolicyRevision(doc["uai"], int(doc["version"]), doc["document"], doc["by"], doc["at"])


class BlockRepository:
    """Who blocked whom (``blocks``)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._c = db.get_collection("blocks", write_concern=WriteConcern(w="majority"))

    async def create_indexes(self) -> None:
        await self._c.create_index([("blocked", ASCENDING)], name="blocked")
        await self._c.create_index([("blocker", ASCENDING)], name="blocker")

    async def add(self, blocker: str, blocked: str, now: datetime) -> None:
        await self._c.update_one(
            {"_id": f"{blocker}:{blocked}"},
            {"$setOnInsert": {"blocker": blocker, "blocked": blocked, "at": now}},
            upsert=True,
        )

    async def remove(self, blocker: str, blocked: str) -> bool:
        result = await self._c.delete_one({"_id": f"{blocker}:{blocked}"})
        return result.deleted_count == 1

    async def of_blocker(self, blocker: str) -> list[str]:
        cursor = self._c.find({"blocker": blocker}, {"blocked": 1}).limit(MAX_LISTED)
        return [doc["blocked"] async for doc in cursor]

    async def blockers_of_many(self, blocked: Sequence[str]) -> dict[str, list[str]]:
        """Everyone who blocked each of ``blocked`` (one query; absent: nobody)."""
        found: dict[str, list[str]] = {}
        cursor = self._c.find({"blocked": {"$in": list(blocked)}}, {"blocker": 1, "blocked": 1})
        async for doc in cursor:
            found.setdefault(doc["blocked"], []).append(doc["blocker"])
        return found

    async def blocking(self, blocked: str, among: Sequence[str]) -> list[str]:
        """Which of ``among`` blocked ``blocked``."""
        cursor = self._c.find({"blocked": blocked, "blocker": {"$in": list(among)}}, {"blocker": 1})
        return [doc["blocker"] async for doc in cursor]


class ReportRepository:
    """Reports of messages and their moderation (``reports``)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._c = db.get_collection("reports", write_concern=WriteConcern(w="majority", j=True))

    async def create_indexes(self) -> None:
        await self._c.create_index(
            [("uai", ASCENDING), ("state", ASCENDING), ("created_at", ASCENDING)], name="queue"
        )
        await self._c.create_index([("reporter", ASCENDING)], name="reporter")
        await self._c.create_index([("created_at", ASCENDING)], name="created")

    async def add(self, report: Doc) -> str:
        """File a report (fields as in the module docstring, without ``_id``)."""
        ident = new_id("r")
        await self._c.insert_one({"_id": ident, **report})
        return ident

    async def get(self, report_id: str) -> Doc | None:
        return await self._c.find_one({"_id": report_id})

    async def of_school(self, uai: str, state: str | None = None) -> list[Doc]:
        query: Doc = {"uai": uai}
        if state is not None:
            query["state"] = state
        cursor = self._c.find(query).sort("created_at", ASCENDING).limit(MAX_LISTED)
        return [doc async for doc in cursor]

    async def of_reporter(self, person_id: str) -> list[Doc]:
        cursor = self._c.find({"reporter": person_id}, {"body": 0, "franking_key": 0})
        return [doc async for doc in cursor.sort("created_at", DESCENDING).limit(MAX_LISTED)]

    async def move(
        self,
        report_id: str,
        expected: str,
        state: str,
        by: str,
        now: datetime,
        until: datetime | None = None,
    ) -> bool:
        """Move a report from ``expected`` to ``state``; False if it was moved meanwhile."""
        update: Doc = {
            "$set": {"state": state, "decided_at": now, "until": until},
            "$push": {"history": {"state": state, "by": by, "at": now}},
        }
        result = await self._c.update_one({"_id": report_id, "state": expected}, update)
        return result.modified_count == 1


class IncidentRepository:
    """Incident controls (``incident_controls``), watched by every node."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.collection = db.get_collection(
            "incident_controls", write_concern=WriteConcern(w="majority", j=True)
        )

    async def create_indexes(self) -> None:
        await self.collection.create_index([("lifted_at", ASCENDING)], name="active")
        await self.collection.create_index([("uai", ASCENDING)], name="uai")

    async def add(self, control: Doc) -> str:
        """Store a control (``uai, action, scope, target, until, at, by``); returns its id."""
        ident = new_id("i")
        await self.collection.insert_one({"_id": ident, "lifted_at": None, **control})
        return ident

    async def get(self, control_id: str) -> Doc | None:
        return await self.collection.find_one({"_id": control_id})

    async def lift(self, control_id: str, now: datetime) -> bool:
        result = await self.collection.update_one(
            {"_id": control_id, "lifted_at": None}, {"$set": {"lifted_at": now}}
        )
        return result.modified_count == 1

    async def lift_where(self, uai: str, action: str, now: datetime) -> int:
        result = await self.collection.update_many(
            {"uai": uai, "action": action, "lifted_at": None}, {"$set": {"lifted_at": now}}
        )
        return result.modified_count

    async def active(self, now: datetime, uai: str | None = None) -> list[Doc]:
        """Controls not lifted and not ended, oldest first."""
        query: Doc = {"lifted_at": None, "$or": [{"until": None}, {"until": {"$gt": now}}]}
        if uai is not None:
            query["uai"] = uai
        cursor = self.collection.find(query).sort("at", ASCENDING).limit(10_000)
        return [doc async for doc in cursor]


class NoticeRepository:
    """Unsequenced notices to devices, relayed between nodes by a change stream."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.collection = db.get_collection("notices", write_concern=WriteConcern(w="majority"))

    async def create_indexes(self) -> None:
        await self.collection.create_index("expires_at", expireAfterSeconds=0, name="ttl")

    async def add(self, node: str, devices: Sequence[str], frame: str, now: datetime) -> None:
        await self.collection.insert_one(
            {
                "_id": new_id("n"),
                "node": node,
                "devices": list(devices),
                "frame": frame,
                "at": now,
                "expires_at": now + NOTICE_LIFETIME,
            }
        )


class ModerationRepository:
    """The moderation aggregates, composed for :class:`storage.database.Store`."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.policies = PolicyRepository(db)
        self.blocks = BlockRepository(db)
        self.reports = ReportRepository(db)
        self.incidents = IncidentRepository(db)
        self.notices = NoticeRepository(db)

    async def create_indexes(self) -> None:
        for repository in (
            self.policies,
            self.blocks,
            self.reports,
            self.incidents,
            self.notices,
        ):
            await repository.create_indexes()
