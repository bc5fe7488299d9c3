"""The persisted-path ceiling: the database's raw journaled insert rate (issue 9, baseline 2).

A fresh SecantusDB child started exactly as Carnet starts it
(:class:`storage.embedded.EmbeddedDatabase`), a ``messages`` collection with
Carnet's own indexes (``MessageRepository.create_indexes``), then pymongo
writes of Carnet's own message documents (``storage.messages.message_document``:
one pairwise ciphertext of the run's size, :data:`CONVERSATIONS` conversations
as in ``direct``) with write concern ``majority`` and ``j=True``:

- ``single``: one ``insert_one`` at a time (one client, no concurrency);
- ``concurrent``: 16 concurrent ``insert_one`` (what concurrent senders give a
  server that writes each send on its own);
- ``batch``: ``insert_many`` of 100 documents at a time (what group commit can reach).

Each mode is bounded in time and in count.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from bench.procstat import CpuMeter
from storage.embedded import EmbeddedDatabase
from storage.ids import derived_id
from storage.messages import MessageRepository, NewMessage, message_document

BATCH = 100
CONCURRENCY = 16
MAX_DOCS = 2_000_000


CONVERSATIONS = 50
"""Conversations the documents are spread over (``direct``'s 50 pairs)."""


def message_doc(n: int, size: int) -> dict[str, Any]:
    """The ``n``-th message as Carnet stores a ``direct`` send of ``size`` bytes."""
    now = datetime.now(UTC)
    sender = f"d{n % (2 * CONVERSATIONS):020d}"
    message = NewMessage(
        message_id=derived_id("m", sender, f"bench-{n}"),
        conversation=f"c{n % CONVERSATIONS:020d}",
        sender_device=sender,
        sender_person=f"p{n % (2 * CONVERSATIONS):020d}",
        created_at=now,
        pairwise={f"r{n % (2 * CONVERSATIONS):020d}": os.urandom(size)},
    )
    return message_document(message, n // CONVERSATIONS + 1, "bench", now + timedelta(days=30))


async def measure(size: int, seconds: float) -> dict[str, Any]:
    """Start a fresh database, measure the three modes, stop it."""
    with tempfile.TemporaryDirectory(prefix="carnet-bench-db-") as tmp:
        database = EmbeddedDatabase(Path(tmp), cache_size="256M")
        uri = await database.start()
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
        try:
            messages = MessageRepository(client["bench"])
            await messages.create_indexes()
            collection = messages.collection  # write concern majority, journaled
            meter = CpuMeter({"database": database.pid})
            counter = iter(range(MAX_DOCS))
            results: dict[str, Any] = {}
            for mode in ("single", "concurrent", "batch"):
                meter.start()
                started = time.monotonic()
                docs = await _run(mode, collection, counter, size, started + seconds)
                elapsed = time.monotonic() - started
                meter.stop()
                results[mode] = {
                    "docs": docs,
                    "docs_per_s": round(docs / elapsed, 1),
                    "database_cpu_us_per_doc": round(meter.cpu["database"] / docs * 1e6, 1)
                    if docs
                    else None,
                }
            return results
        finally:
            await client.close()
            await database.stop()


async def _run(mode: str, collection: Any, counter: Any, size: int, deadline: float) -> int:
    done = 0
    if mode == "batch":
        for _ in range(MAX_DOCS // BATCH):
            if time.monotonic() >= deadline:
                break
            await collection.insert_many([message_doc(next(counter), size) for _ in range(BATCH)])
            done += BATCH
        return done

    async def one_writer(limit: int) -> int:
        written = 0
        for _ in range(limit):
            if time.monotonic() >= deadline:
                break
            await collection.insert_one(message_doc(next(counter), size))
            written += 1
        return written

    writers = 1 if mode == "single" else CONCURRENCY
    counts = await asyncio.gather(*(one_writer(MAX_DOCS // 4 // writers) for _ in range(writers)))
    return sum(counts)


if __name__ == "__main__":
    print(asyncio.run(measure(400, 3)))
