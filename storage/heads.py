"""Node marks: from when a node's stored messages may not be published yet.

Documents: ``heads {_id: node id, mark, lifetime_seconds, updated_at}``.

A node's sequencer gives seqs from memory and publishes them (raises the
conversations' ``seq`` counters, ``$max``) every ``publish_seconds``, not per
batch. What it stored but did not publish yet is found again from the
messages themselves: every message the node stored since its last
publication, or may still store, was created at or after its **mark**, and a
message created at ``t`` expires at ``t + lifetime`` (``messages.expires_at``,
TTL index ``ttl``). So "what a node may have left unpublished" is the index
range ``expires_at >= mark + lifetime`` (``MessageRepository.heads_since``).

The sequencer moves its mark up after each publication (and once a minute
when idle), and down, before it writes, if a message older than the mark
comes (``server.sequencer``). Nothing is written per batch: the previous
design updated ``heads.<conversation>`` here after every batch, which the
embedded database paid 1.3 ms for at 10 conversations, 1.7 ms at 50 and 66 ms
at 500, on the critical path of every commit (docs/performance.md).

A node starting up publishes, before it serves, the heads of the messages
from the oldest mark on (``Sequencer.repair``), and drops the documents of
nodes silent for long. Documents of that previous design (``heads: {conversation
id: seq}``, no ``mark``) are still published once, and what was published removed
(:meth:`HeadRepository.forget_legacy`): a rolling upgrade loses no head.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo import WriteConcern
from pymongo.asynchronous.database import AsyncDatabase

Doc = dict[str, Any]


@dataclass(frozen=True)
class NodeMark:
    """One node's document.

    Attributes:
        node: the node id.
        mark: every message the node stored and did not publish was created at
            or after it; None in a document of the previous design.
        lifetime: the node's undelivered lifetime (``expires_at - created_at``).
        updated_at: when the node last wrote its document (by its own clock).
        heads: conversation → seq recorded by a node of the previous design.
    """

    node: str
    mark: datetime | None
    lifetime: timedelta
    updated_at: datetime
    heads: dict[str, int] = field(default_factory=dict)

    @property
    def expires_from(self) -> datetime | None:
        """The ``expires_at`` from which this node's unpublished messages lie."""
        return None if self.mark is None else self.mark + self.lifetime


class HeadRepository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._heads = db.get_collection("heads", write_concern=WriteConcern(w="majority", j=True))

    async def create_indexes(self) -> None:
        """Only ``_id``: one document per node."""

    async def mark(self, node: str, mark: datetime, lifetime: timedelta, now: datetime) -> None:
        """Durably set ``node``'s mark (up or down: the node knows what it has left)."""
        await self._heads.update_one(
            {"_id": node},
            {
                "$set": {
                    "mark": mark,
                    "lifetime_seconds": lifetime.total_seconds(),
                    "updated_at": now,
                }
            },
            upsert=True,
        )

    async def all(self) -> list[NodeMark]:
        return [
            NodeMark(
                node=d["_id"],
                mark=d.get("mark"),
                lifetime=timedelta(seconds=float(d.get("lifetime_seconds", 0))),
                updated_at=d["updated_at"],
                heads={c: int(s) for c, s in d.get("heads", {}).items()},
            )
            async for d in self._heads.find({})
        ]

    async def forget_legacy(self, node: str, heads: Mapping[str, int]) -> None:
        """Published: remove these entries of a previous-design document, unless
        its node (still running the previous version) raised one meanwhile
        (then all stay, published again next time); entries it added stay."""
        if heads:
            await self._heads.update_one(
                {"_id": node, **{f"heads.{c}": s for c, s in heads.items()}},
                {"$unset": {f"heads.{c}": "" for c in heads}},
            )

    async def drop(self, node: str, updated_at: datetime) -> None:
        """Remove a silent node's document, unless it wrote again meanwhile."""
        await self._heads.delete_one({"_id": node, "updated_at": updated_at})
