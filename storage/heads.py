"""Node heads: the last seq each node stored per conversation, not yet published.

Documents: ``heads {_id: node id, heads: {conversation id: seq}, updated_at}``.

A node's sequencer writes one batch of messages, then records in ONE update
of its own document the last seq it stored in each conversation of the
batch, before answering ``sent``. Every ``publish_seconds`` it raises the
conversations' ``seq`` counters from there (``$max``) and removes what it
published. One update per batch instead of one per conversation in it: with
fifty busy conversations that was the cost of a group commit
(docs/performance.md).

After a crash, what a node recorded but did not publish is still here: the
next node to start publishes every document (:meth:`all`) before it serves,
and drops the documents of nodes silent for long.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import WriteConcern
from pymongo.asynchronous.database import AsyncDatabase

Doc = dict[str, Any]


@dataclass(frozen=True)
class NodeHeads:
    node: str
    heads: dict[str, int]
    updated_at: datetime


class HeadRepository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._heads = db.get_collection("heads", write_concern=WriteConcern(w="majority", j=True))

    async def create_indexes(self) -> None:
        """Only ``_id``: one document per node."""

    async def record(self, node: str, heads: Mapping[str, int], now: datetime) -> None:
        """Durably note ``node``'s last stored seq per conversation (``$max``)."""
        await self._heads.update_one(
            {"_id": node},
            {"$max": {f"heads.{c}": s for c, s in heads.items()}, "$set": {"updated_at": now}},
            upsert=True,
        )

    async def forget(self, node: str, conversations: Sequence[str]) -> None:
        """Published: these entries of ``node`` are no longer needed."""
        if conversations:
            await self._heads.update_one(
                {"_id": node}, {"$unset": {f"heads.{c}": "" for c in conversations}}
            )

    async def all(self) -> list[NodeHeads]:
        return [
            NodeHeads(d["_id"], {c: int(s) for c, s in d.get("heads", {}).items()}, d["updated_at"])
            async for d in self._heads.find({})
        ]

    async def drop(self, node: str, updated_at: datetime) -> None:
        """Remove a silent node's document, unless it wrote again meanwhile."""
        await self._heads.delete_one({"_id": node, "updated_at": updated_at})
