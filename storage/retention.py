"""Retention policy and the purge queries that apply it (RGPD art. 5(1)(e)).

:class:`RetentionPolicy` holds one duration per data category (the defaults
and their legal sources are in docs/rgpd.md and the art. 30 register) and
turns "now" into a cutoff per category: pure, no I/O.
:class:`RetentionRepository` counts (dry run) or deletes what is past its
cutoff, per category and school, skipping what a legal hold protects.

Every node already deletes expired messages every 30 s
(``server.background.delete_expired``) and TTL indexes remove envelopes,
group payloads, enrolment codes and throttle windows (their ``expires_at``);
the ``undelivered`` purge repeats it explicitly (with holds) because those
run on their own schedule and can be disabled. Everything that needs a
cascade or a hold check (people who left, conversation metadata, receipts) is
purged here, never by TTL.

Collections of the messaging aggregate (``conversations``, ``messages``,
``cursors``, ``receipts``, ``reports``) are queried by name; absent ones are
simply empty.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

Doc = dict[str, Any]
Counts = dict[str, int]
"""A number of documents per school (UAI; ``"*"`` when no school applies)."""
BATCH = 500
MAX_BATCHES = 100_000
"""Upper bound on the batches of one purge (50 million documents)."""
NO_SCHOOL = "*"


def school_year_end(now: datetime, margin: timedelta) -> datetime:
    """The latest end of a school year (1 September, 00:00 UTC) that is ``margin`` past.

    Conversation metadata of a school year is kept until that year's end
    plus the margin (the time to settle the year's incidents and complaints).
    """
    end = datetime(now.year, 9, 1, tzinfo=UTC)
    for _ in range(3):
        if end + margin <= now:
            return end
        end = end.replace(year=end.year - 1)
    return end


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each category of data is kept (docs/rgpd.md, "Retention")."""

    undelivered: timedelta = timedelta(days=30)
    metadata_margin: timedelta = timedelta(days=60)
    receipts_margin: timedelta = timedelta(days=60)
    reports: timedelta = timedelta(days=365)
    audit_log: timedelta = timedelta(days=365)
    access_logs: timedelta = timedelta(days=183)
    attachments: timedelta = timedelta(days=30)
    people_left: timedelta = timedelta(days=90)
    dpo_requests: timedelta = timedelta(days=5 * 365)

    def cutoffs(self, now: datetime) -> dict[str, datetime]:
        """Per category, the time before which data is deleted."""
        return {
            "undelivered": now,
            "conversation_metadata": school_year_end(now, self.metadata_margin),
            "receipts": school_year_end(now, self.receipts_margin),
            "reports": now - self.reports,
            "audit_log": now - self.audit_log,
            "people_left": now - self.people_left,
            "dpo_requests": now - self.dpo_requests,
        }


def _add(counts: Counts, school: str | None, n: int = 1) -> None:
    key = school or NO_SCHOOL
    counts[key] = counts.get(key, 0) + n


SchoolsOf = Callable[[list[Doc]], Awaitable[list[str | None]]]


class RetentionRepository:
    """Counts or deletes expired data; every method takes ``dry_run``."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._db = db
        self._people = db["people"]
        self._devices = db["devices"]
        self._envelopes = db["envelopes"]
        self._payloads = db["group_payloads"]
        self._conversations = db["conversations"]
        self._messages = db["messages"]
        self._cursors = db["cursors"]
        self._receipts = db["receipts"]
        self._reports = db["reports"]

    async def create_indexes(self) -> None:
        await self._people.create_index("left_at", name="left_at", sparse=True)

    # -- directory events ---------------------------------------------------------------

    async def mark_left(self, person_id: str, now: datetime) -> Doc | None:
        """Record that a person left their school: the purge clock starts (arrêté ENT, art. 6)."""
        return await self._people.find_one_and_update(
            {"_id": person_id},
            {"$set": {"left_at": now, "updated_at": now}},
            return_document=True,
        )

    async def leavers(self, cutoff: datetime, school: str | None = None) -> list[Doc]:
        """People who left before ``cutoff`` (``_id`` and ``uai``)."""
        query: Doc = {"left_at": {"$ne": None, "$lt": cutoff}}
        if school is not None:
            query["uai"] = school
        cursor = self._people.find(query, {"uai": 1}).sort("_id", 1).limit(BATCH * 10)
        return [doc async for doc in cursor]

    # -- school attribution ---------------------------------------------------------------

    async def _schools_of_conversations(self, ids: Iterable[str]) -> dict[str, str]:
        cursor = self._conversations.find({"_id": {"$in": list(set(ids))}}, {"uai": 1})
        return {doc["_id"]: doc.get("uai") or NO_SCHOOL async for doc in cursor}

    async def _schools_of_devices(self, ids: Iterable[str]) -> dict[str, str]:
        owners = {
            doc["_id"]: doc["person_id"]
            async for doc in self._devices.find({"_id": {"$in": list(set(ids))}}, {"person_id": 1})
        }
        people = {
            doc["_id"]: doc["uai"]
            async for doc in self._people.find({"_id": {"$in": list(set(owners.values()))}})
        }
        return {device: people.get(person, NO_SCHOOL) for device, person in owners.items()}

    async def conversation_school(self, conversation_id: str) -> str | None:
        """The school (UAI) of a conversation, or None if it does not exist."""
        doc = await self._conversations.find_one({"_id": conversation_id}, {"uai": 1})
        return str(doc.get("uai") or NO_SCHOOL) if doc else None

    async def by_conversation(self, docs: list[Doc]) -> list[str | None]:
        schools = await self._schools_of_conversations(d.get("conversation", "") for d in docs)
        return [schools.get(d.get("conversation", "")) for d in docs]

    async def by_device(self, docs: list[Doc]) -> list[str | None]:
        schools = await self._schools_of_devices(d.get("device_id", "") for d in docs)
        return [schools.get(d.get("device_id", "")) for d in docs]

    @staticmethod
    async def by_field(docs: list[Doc]) -> list[str | None]:
        return [d.get("uai") or d.get("school") for d in docs]

    async def _sweep(
        self,
        collection: AsyncCollection[Doc],
        query: Doc,
        schools_of: SchoolsOf,
        dry_run: bool,
        school: str | None,
        keep: Callable[[Doc], bool] = lambda doc: False,
    ) -> Counts:
        """Count or delete ``query``'s documents batch by batch, per school."""
        counts: Counts = {}
        last: Any = None
        for _ in range(MAX_BATCHES):
            page_query = query if last is None else {"$and": [query, {"_id": {"$gt": last}}]}
            docs = [doc async for doc in collection.find(page_query).sort("_id", 1).limit(BATCH)]
            if not docs:
                break
            last = docs[-1]["_id"]
            doomed = []
            for doc, doc_school in zip(docs, await schools_of(docs), strict=True):
                if keep(doc) or (school is not None and doc_school != school):
                    continue
                _add(counts, doc_school)
                doomed.append(doc["_id"])
            if doomed and not dry_run:
                await collection.delete_many({"_id": {"$in": doomed}})
        return counts

    # -- categories ---------------------------------------------------------------------

    async def undelivered(self, now: datetime, dry_run: bool, school: str | None) -> Counts:
        """Envelopes, group payloads and messages past ``expires_at`` (mirrors their TTL)."""
        counts = await self._sweep(
            self._envelopes, {"expires_at": {"$lt": now}}, self.by_device, dry_run, school
        )
        if school is None:
            payloads = await self._sweep(
                self._payloads, {"expires_at": {"$lt": now}}, self.by_field, dry_run, None
            )
            for key, n in payloads.items():
                _add(counts, key, n)
        messages = await self._sweep(
            self._messages, {"expires_at": {"$lt": now}}, self.by_conversation, dry_run, school
        )
        for key, n in messages.items():
            _add(counts, key, n)
        return counts

    async def conversation_metadata(
        self,
        cutoff: datetime,
        held: set[str],
        dry_run: bool,
        school: str | None,
    ) -> Counts:
        """Messages older than the cutoff, and conversations archived before it, with
        their cursors and receipts; a hold on the conversation or sender keeps them."""
        counts = await self._sweep(
            self._messages,
            {"created_at": {"$lt": cutoff}},
            self.by_conversation,
            dry_run,
            school,
            keep=lambda d: d.get("conversation") in held or d.get("sender_person") in held,
        )
        archived: Doc = {"archived_at": {"$ne": None, "$lt": cutoff}}
        if school is not None:
            archived["uai"] = school
        gone: list[str] = []
        async for doc in self._conversations.find(archived, {"uai": 1}).limit(BATCH * 10):
            if doc["_id"] in held:
                continue
            gone.append(doc["_id"])
            _add(counts, doc.get("uai"))
        if gone and not dry_run:
            for collection in (self._messages, self._cursors, self._receipts):
                await collection.delete_many({"conversation": {"$in": gone}})
            await self._conversations.delete_many({"_id": {"$in": gone}})
        return counts

    async def receipts(
        self, cutoff: datetime, held: set[str], dry_run: bool, school: str | None
    ) -> Counts:
        return await self._sweep(
            self._receipts,
            {"at": {"$lt": cutoff}},
            self.by_conversation,
            dry_run,
            school,
            keep=lambda d: d.get("conversation") in held or d.get("person_id") in held,
        )

    async def reports(
        self, cutoff: datetime, held: set[str], dry_run: bool, school: str | None
    ) -> Counts:
        return await self._sweep(
            self._reports,
            {"created_at": {"$lt": cutoff}},
            self.by_field,
            dry_run,
            school,
            keep=lambda d: d.get("conversation") in held,
        )
