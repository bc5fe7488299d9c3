"""Everything held about one person, across every collection (RGPD art. 15, 17, 33).

Carnet names a person by their person id (``p_...``) and their devices by
device ids (``d_...``), in fields with agreed names; this module finds and
scrubs them generically, over ``list_collection_names()``, so that a
collection added later is covered without changing this code:

- in collections whose shape is known (:data:`KNOWN_SCHEMAS`), by query on
  the person fields :data:`PERSON_FIELDS`, the device fields
  :data:`DEVICE_FIELDS` and per-device maps such as ``pairwise.<device id>``;
- in every other collection, by reading it whole and looking for the ids in
  every string and key at any depth (slower, but complete by construction).

Erasure rules for a matched document (:func:`scrub`): it is deleted when it
is *about* the person (its ``_id`` or one of :data:`OWNER_FIELDS` names
them, e.g. a receipt, a cursor); otherwise it is kept with the person
replaced by ``"erased"`` (a message they sent keeps its place in the
conversation), removed from arrays (members, recipients) and from per-device
maps. Collections whose own module handles the person
(:data:`SELF_MANAGED`) are skipped by the sweep.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

Doc = dict[str, Any]

ERASED = "erased"
PERSON_FIELDS = (
    "person_id",
    "sender_person",
    "members",
    "owners",
    "children",
    "created_by",
    "actor",
    "target",
    "subject",
    "reporter",
    "reported_person",
)
DEVICE_FIELDS = ("device_id", "sender_device", "recipients", "silent")
DEVICE_MAPS = ("pairwise", "ciphertexts")
OWNER_FIELDS = frozenset({"person_id", "device_id"})
"""A document whose owner field names the person is about them: it is deleted."""
OWNED_BY_SENDER = frozenset({"envelopes"})
"""Queued ciphertext from an erased sender cannot be authenticated any more: deleted."""
SELF_MANAGED = frozenset(
    {
        # removed by server.admin_actions.remove_person (the account cascade)
        "people",
        "devices",
        "enrolment_codes",
        "signed_prekeys",
        "one_time_prekeys",
        "prekey_counts",
        # RGPD records, each with its own rule
        "audit_log",
        "audit_heads",
        "audit_subjects",
        "dpo_requests",
        "legal_holds",
        "leases",
    }
)
LINK_FIELDS = ("_id", "role", "given_name", "family_name")
"""What an export shows of another person who links to the subject (a parent)."""
KNOWN_SCHEMAS = frozenset(
    {
        "conversations",
        "messages",
        "cursors",
        "receipts",
        "envelopes",
        "group_payloads",
        "schools",
        "classes",
        "api_tokens",
        "throttle",
        "server_keys",
    }
)
"""Collections whose person and device fields are all in the lists above: searched by
query. Any other collection is scanned whole, every string at any depth, so that a
collection added later is covered before anyone lists its fields here."""
SECRET_FIELDS = frozenset({"secret_hash", "ciphertext", "ciphertexts", "pairwise", "group"})
"""Left out of an export: hashes of secrets, and ciphertext the server cannot read."""


@dataclass(frozen=True)
class Identifiers:
    """How one person is named in the database."""

    person_id: str
    device_ids: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return (self.person_id, *self.device_ids)

    def query(self) -> Doc:
        """Documents naming the person or one of their devices, in any known field."""
        ors: list[Doc] = [{"_id": {"$in": list(self.all)}}]
        ors += [{name: self.person_id} for name in PERSON_FIELDS]
        if self.device_ids:
            devices = list(self.device_ids)
            ors += [{name: {"$in": devices}} for name in DEVICE_FIELDS]
            ors += [{f"{m}.{d}": {"$exists": True}} for m in DEVICE_MAPS for d in devices]
        return {"$or": ors}


@dataclass
class Scrubbed:
    """What :func:`scrub` decided for one document."""

    delete: bool = False
    changes: Doc = field(default_factory=dict)


def _mentions(value: str, names: tuple[str, ...]) -> bool:
    return any(name in value for name in names)


def _clean(value: Any, names: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return ERASED if _mentions(value, names) else value
    if isinstance(value, list):
        kept = [v for v in value if not (isinstance(v, str) and _mentions(v, names))]
        kept = [v for v in kept if not (isinstance(v, dict) and _owned(v, names))]
        return [_clean(v, names) for v in kept]
    if isinstance(value, dict):
        return {k: _clean(v, names) for k, v in value.items() if not _mentions(k, names)}
    return value


def mentions(value: Any, names: tuple[str, ...]) -> bool:
    """Whether ``value`` names one of ``names`` anywhere (strings, keys, at any depth)."""
    if isinstance(value, str):
        return _mentions(value, names)
    if isinstance(value, dict):
        return any(_mentions(str(k), names) or mentions(v, names) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(mentions(v, names) for v in value)
    return False


def _owned(doc: Doc, names: tuple[str, ...], extra_owner_fields: Iterable[str] = ()) -> bool:
    if isinstance(doc.get("_id"), str) and _mentions(doc["_id"], names):
        return True
    owners = OWNER_FIELDS.union(extra_owner_fields)
    return any(isinstance(doc.get(f), str) and doc[f] in names for f in owners)


def scrub(doc: Doc, names: tuple[str, ...], collection: str = "") -> Scrubbed:
    """Decide how to erase ``names`` from one document (pure; see the module rules)."""
    extra = ("sender_person", "sender_device") if collection in OWNED_BY_SENDER else ()
    if _owned(doc, names, extra):
        return Scrubbed(delete=True)
    changes = {}
    for key, value in doc.items():
        if key == "_id":
            continue
        cleaned = _clean(value, names)
        if cleaned != value:
            changes[key] = cleaned
    return Scrubbed(changes=changes)


class SubjectRepository:
    """Generic reads and erasure of one person's data over every collection."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._db = db

    async def create_indexes(self) -> None:
        """Nothing: the aggregates' own indexes serve these queries."""

    async def collections(self) -> list[str]:
        names = await self._db.list_collection_names()
        return sorted(n for n in names if not n.startswith("system."))

    async def device_ids(self, person_id: str) -> tuple[str, ...]:
        """Every device the person ever enrolled, revoked ones included."""
        cursor = self._db["devices"].find({"person_id": person_id}, {"_id": 1})
        return tuple(sorted([doc["_id"] async for doc in cursor]))

    async def identifiers(self, person_id: str) -> Identifiers:
        return Identifiers(person_id, await self.device_ids(person_id))

    async def _matching(
        self, name: str, ids: Identifiers, projection: Doc | None = None
    ) -> AsyncIterator[Doc]:
        """Documents of collection ``name`` that name the person (see KNOWN_SCHEMAS)."""
        collection = self._db[name]
        if name in KNOWN_SCHEMAS or name in SELF_MANAGED:
            async for doc in collection.find(ids.query(), projection).sort("_id", 1):
                yield doc
            return
        async for doc in collection.find({}).sort("_id", 1):
            if mentions(doc, ids.all):
                yield {k: v for k, v in doc.items() if k not in SECRET_FIELDS}

    async def documents(
        self, ids: Identifiers, skip: Iterable[str] = ()
    ) -> AsyncIterator[tuple[str, Doc]]:
        """``(collection, document)`` for every document naming the person, secrets left out.

        Documents come one at a time, collection by collection (an export
        streams them; it never holds a whole collection).
        """
        skipped = set(skip)
        projection = {name: 0 for name in SECRET_FIELDS}
        for name in await self.collections():
            if name in skipped:
                continue
            async for doc in self._matching(name, ids, projection):
                if name == "people" and doc["_id"] != ids.person_id:
                    # a parent linking to the person: the link, not the parent's record
                    doc = {k: doc.get(k) for k in LINK_FIELDS} | {"relation": "parent"}
                yield name, doc

    async def erase(self, ids: Identifiers) -> dict[str, int]:
        """Scrub the person from every collection but :data:`SELF_MANAGED` ones.

        Returns:
            Documents deleted or changed, by collection (only those touched).
        """
        touched: dict[str, int] = {}
        names = ids.all
        for name in await self.collections():
            if name in SELF_MANAGED:
                continue
            collection = self._db[name]
            async for doc in self._matching(name, ids):
                decision = scrub(doc, names, name)
                if decision.delete:
                    await collection.delete_one({"_id": doc["_id"]})
                elif decision.changes:
                    await collection.update_one({"_id": doc["_id"]}, {"$set": decision.changes})
                else:
                    continue
                touched[name] = touched.get(name, 0) + 1
        return touched
