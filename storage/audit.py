"""The audit log: append-only, hash-chained, one writer at a time (RGPD art. 5(2), 30, 32).

Every admin, operator, director and DPO action is an entry; each entry
commits to the one before it, so editing or removing an entry breaks the
chain at a place :meth:`AuditLog.verify` names.

Documents::

    audit_log      {_id: seq, prev_hash, hash, at, actor, action, target,
                    school, details}
    audit_heads    {_id: "main", seq, hash, anchor_seq, anchor_hash}
    audit_subjects {_id: person or device id, alias}

``hash = SHA-256(canonical JSON of {seq, prev_hash, at, actor, action,
target, school, details})`` (keys sorted, no spaces, UTF-8, ``at`` as ISO
8601 with milliseconds). The first entry's ``prev_hash`` is 64 zeros.

Writers (several nodes): an entry is inserted with ``_id = head.seq + 1``
(the unique ``_id`` makes two writers of the same seq impossible), then the
head advances with a compare-and-set on the expected seq. A writer that
finds the seq taken helps the head forward and retries, so a crash between
the two writes never blocks the chain.

Pseudonyms (art. 17 vs. an immutable log): person and device ids in
``actor``, ``target`` and ``details`` are written as aliases (``s_...``),
resolved through ``audit_subjects``. Erasing a person deletes their aliases:
their old entries stay verifiable but no longer point at anyone. Only the
entry that records the erasure names the person (``in_clear=True``), as the
proof the controller must keep (art. 5(2), art. 17(3)(b)).

Retention: entries older than the audit retention are removed from the
start of the chain; the head keeps the hash of the last removed entry as an
anchor, from which :meth:`AuditLog.verify` starts.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from storage.ids import new_id

Doc = dict[str, Any]

CHAIN = "main"
GENESIS = "0" * 64
MAX_WRITE_ATTEMPTS = 50
"""A writer retries this often under contention before giving up."""
SUBJECT_ID = re.compile(r"^[pd]_[A-Za-z0-9_-]{8,}$")
"""Person (``p_``) and device (``d_``) identifiers: written to the log as aliases."""


class AuditWriteConflict(Exception):
    """The log stayed contended for :data:`MAX_WRITE_ATTEMPTS` attempts."""


def iso_ms(at: datetime) -> str:
    """``at`` with millisecond precision, as BSON stores it."""
    return at.replace(microsecond=at.microsecond // 1000 * 1000).isoformat(timespec="milliseconds")


def entry_hash(entry: Doc) -> str:
    """SHA-256 over the canonical JSON of an entry's chained fields."""
    body = {
        "seq": entry["seq"],
        "prev_hash": entry["prev_hash"],
        "at": iso_ms(entry["at"]),
        "actor": entry["actor"],
        "action": entry["action"],
        "target": entry["target"],
        "school": entry["school"],
        "details": entry["details"],
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Verification:
    """Outcome of :meth:`AuditLog.verify`: ``ok``, or where and why it broke."""

    ok: bool
    checked: int
    last_seq: int
    first_bad_seq: int | None = None
    problem: str | None = None

    def as_dict(self) -> Doc:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "last_seq": self.last_seq,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
        }


def _public(doc: Doc) -> Doc:
    doc = dict(doc)
    doc["seq"] = doc.pop("_id")
    return doc


class AuditLog:
    """The hash-chained audit log."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._entries = db["audit_log"]
        self._heads = db["audit_heads"]
        self._subjects = db["audit_subjects"]
        self._append = asyncio.Lock()
        """One writer at a time in this process; other nodes are handled by the
        seq race below (the chain's head moves on and the writer retries)."""

    async def create_indexes(self) -> None:
        await self._entries.create_index([("at", ASCENDING)], name="at")
        await self._entries.create_index([("target", ASCENDING)], name="target")
        await self._entries.create_index([("school", ASCENDING), ("_id", ASCENDING)], name="school")

    async def _alias(self, value: str) -> str:
        """The subject's alias, created on first use (of two writers, the unique
        ``_id`` keeps the first). Read, then insert: not one
        ``find_one_and_update``, which SecantusDB 0.7 serves by scanning the
        whole collection (docs/performance.md, "findAndModify").

        Raises:
            AuditWriteConflict: the alias was created and erased under us
                :data:`MAX_WRITE_ATTEMPTS` times.
        """
        for _ in range(MAX_WRITE_ATTEMPTS):
            doc = await self._subjects.find_one({"_id": value}, {"alias": 1})
            if doc is not None:
                return str(doc["alias"])
            alias = new_id("s")
            try:
                await self._subjects.insert_one({"_id": value, "alias": alias})
            except DuplicateKeyError:
                continue  # another writer created it first: read theirs
            return alias
        raise AuditWriteConflict("the audit subjects are contended; retry")

    async def _pseudonymise(self, value: Any) -> Any:
        if isinstance(value, str) and SUBJECT_ID.match(value):
            return await self._alias(value)
        if isinstance(value, list):
            return [await self._pseudonymise(v) for v in value]
        if isinstance(value, dict):
            return {k: await self._pseudonymise(v) for k, v in value.items()}
        return value

    async def aliases(self, identifiers: Iterable[str]) -> list[str]:
        """The aliases under which ``identifiers`` appear in the log (existing ones only)."""
        cursor = self._subjects.find({"_id": {"$in": list(identifiers)}})
        return [doc["alias"] async for doc in cursor]

    async def forget_subjects(self, identifiers: Iterable[str]) -> int:
        """Delete the aliases of erased people and devices (art. 17); returns how many."""
        result = await self._subjects.delete_many({"_id": {"$in": list(identifiers)}})
        return result.deleted_count

    async def record(
        self,
        actor: str,
        action: str,
        target: str | None,
        school: str | None,
        details: Doc | None,
        now: datetime,
        *,
        in_clear: bool = False,
    ) -> Doc:
        """Append one entry and return it.

        Args:
            actor: who acted (``operator:<token id>``, ``dpo:<token id>``, ``cli``,
                ``retention``).
            action: what was done, dotted (``person.erase``, ``audit.read``).
            target: what it was done to (a person, device or request id), or None.
            school: the school concerned (UAI), or None for the whole deployment.
            details: JSON-safe facts (counts, ids); never names or content.
            now: the time of the action.
            in_clear: keep person and device ids as they are (only for the entry
                recording an erasure, see the module docstring).

        Raises:
            AuditWriteConflict: too much contention; the action should fail.
        """
        if not in_clear:
            actor = await self._pseudonymise(actor)
            target = await self._pseudonymise(target)
            details = await self._pseudonymise(details or {})
        at = now.replace(microsecond=now.microsecond // 1000 * 1000)
        async with self._append:
            return await self._append_entry(at, actor, action, target, school, details)

    async def _append_entry(
        self,
        at: datetime,
        actor: str,
        action: str,
        target: str | None,
        school: str | None,
        details: dict[str, Any] | None,
    ) -> Doc:
        for attempt in range(MAX_WRITE_ATTEMPTS):
            if attempt:
                await asyncio.sleep(random.uniform(0, 0.002 * attempt))  # noqa: S311 - jitter
            head = await self._heads.find_one({"_id": CHAIN}) or {"seq": 0, "hash": GENESIS}
            entry: Doc = {
                "seq": head["seq"] + 1,
                "prev_hash": head["hash"],
                "at": at,
                "actor": actor,
                "action": action,
                "target": target,
                "school": school,
                "details": details or {},
            }
            entry["hash"] = entry_hash(entry)
            stored = {"_id": entry["seq"], **{k: v for k, v in entry.items() if k != "seq"}}
            try:
                await self._entries.insert_one(stored)
            except DuplicateKeyError:
                taken = await self._entries.find_one({"_id": entry["seq"]})
                if taken is not None:
                    await self._advance(head["seq"], taken["_id"], taken["hash"])
                continue
            await self._advance(head["seq"], entry["seq"], entry["hash"])
            return entry
        raise AuditWriteConflict("the audit log is contended; retry")

    async def _advance(self, expected_seq: int, seq: int, digest: str) -> None:
        """Move the head from ``expected_seq`` to ``seq`` unless someone already did."""
        try:
            await self._heads.update_one(
                {"_id": CHAIN, "seq": expected_seq},
                {"$set": {"seq": seq, "hash": digest}},
                upsert=expected_seq == 0,
            )
        except DuplicateKeyError:
            pass  # the head exists already: another writer advanced it

    async def entries(
        self,
        *,
        school: str | None = None,
        action: str | None = None,
        targets: list[str] | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[Doc]:
        """Entries matching every given filter, oldest first, after ``after_seq``."""
        query: Doc = {"_id": {"$gt": after_seq}}
        if school is not None:
            query["school"] = school
        if action is not None:
            query["action"] = action
        if targets is not None:
            query["target"] = {"$in": targets}
        if actor is not None:
            query["actor"] = actor
        if since is not None or until is not None:
            query["at"] = {
                **({"$gte": since} if since else {}),
                **({"$lt": until} if until else {}),
            }
        cursor = self._entries.find(query).sort("_id", ASCENDING).limit(limit)
        return [_public(doc) async for doc in cursor]

    async def about(self, identifiers: list[str], limit: int = 10_000) -> list[Doc]:
        """Entries naming any of ``identifiers`` (directly or by alias), as actor or target."""
        names = [*identifiers, *(await self.aliases(identifiers))]
        query = {"$or": [{"target": {"$in": names}}, {"actor": {"$in": names}}]}
        cursor = self._entries.find(query).sort("_id", ASCENDING).limit(limit)
        return [_public(doc) async for doc in cursor]

    async def verify(self, batch: int = 1000) -> Verification:
        """Walk the chain from its anchor; name the first missing or altered entry.

        Checks, entry by entry: the seq follows the previous one (a gap is a
        deleted entry), ``prev_hash`` equals the previous entry's hash, and
        the stored hash equals the recomputed one; finally the head must
        point at the last entry (a truncated tail shows there).
        """
        head = await self._heads.find_one({"_id": CHAIN}) or {"seq": 0, "hash": GENESIS}
        expected_seq = head.get("anchor_seq", 0) + 1
        prev = head.get("anchor_hash", GENESIS)
        checked = 0
        last = expected_seq - 1
        while True:
            cursor = (
                self._entries.find({"_id": {"$gte": expected_seq}}).sort("_id", ASCENDING)
            ).limit(batch)
            docs = [doc async for doc in cursor]
            for doc in docs:
                entry = _public(doc)
                if entry["seq"] != expected_seq:
                    return Verification(
                        False, checked, last, expected_seq, f"entry {expected_seq} is missing"
                    )
                if entry["prev_hash"] != prev:
                    return Verification(
                        False, checked, last, entry["seq"], "prev_hash does not match"
                    )
                if entry_hash(entry) != entry["hash"]:
                    return Verification(
                        False, checked, last, entry["seq"], "content does not match its hash"
                    )
                prev, last, expected_seq = entry["hash"], entry["seq"], expected_seq + 1
                checked += 1
            if len(docs) < batch:
                break
        if head["seq"] != last or head["hash"] != prev:
            return Verification(False, checked, last, last + 1, f"entries after {last} are missing")
        return Verification(True, checked, last)

    async def truncate_before(self, cutoff: datetime) -> int:
        """Remove entries older than ``cutoff`` from the start of the chain.

        The head records the last removed entry's seq and hash first (the
        anchor), so a crash mid-way leaves a chain that still verifies.
        """
        newest_old = await self._entries.find_one(
            {"at": {"$lt": cutoff}}, sort=[("_id", DESCENDING)]
        )
        if newest_old is None:
            return 0
        await self._heads.update_one(
            {"_id": CHAIN},
            {"$set": {"anchor_seq": newest_old["_id"], "anchor_hash": newest_old["hash"]}},
        )
        result = await self._entries.delete_many({"_id": {"$lte": newest_old["_id"]}})
        return result.deleted_count

    async def count_before(self, cutoff: datetime, school: str | None = None) -> dict[str, int]:
        """Entries older than ``cutoff``, by school (``"*"`` for none)."""
        counts: dict[str, int] = {}
        query: Doc = {"at": {"$lt": cutoff}}
        if school is not None:
            query["school"] = school
        async for doc in self._entries.find(query, {"school": 1}):
            key = doc.get("school") or "*"
            counts[key] = counts.get(key, 0) + 1
        return counts
