"""The persisted-path ceiling: the database's raw journaled insert rate (issue 9, baseline 2).

A fresh SecantusDB child started exactly as Carnet starts it
(:class:`storage.embedded.EmbeddedDatabase`), then pymongo writes of
documents shaped like Carnet's envelopes (same fields, same ciphertext size)
with write concern ``majority`` and ``j=True``:

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

from bson import ObjectId
from pymongo import AsyncMongoClient, WriteConcern

from bench.procstat import CpuMeter
from storage.embedded import EmbeddedDatabase

BATCH = 100
CONCURRENCY = 16
MAX_DOCS = 2_000_000


def envelope_doc(n: int, size: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "_id": f"m{n:012d}.d{n % 997:06d}",
        "order": ObjectId(),
        "message_id": f"m{n:012d}",
        "device_id": f"d{n % 997:06d}",
        "sender_device": "dsender0000000000000",
        "sender_person": "psender0000000000000",
        "conversation": None,
        "commitment": None,
        "stamp": None,
        "created_at": now,
        "expires_at": now + timedelta(days=30),
        "ciphertext": os.urandom(size),
    }


async def measure(size: int, seconds: float) -> dict[str, Any]:
    """Start a fresh database, measure the three modes, stop it."""
    with tempfile.TemporaryDirectory(prefix="carnet-bench-db-") as tmp:
        database = EmbeddedDatabase(Path(tmp), cache_size="256M")
        uri = await database.start()
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
        try:
            durable = WriteConcern(w="majority", j=True)
            collection = client["bench"].get_collection("envelopes", write_concern=durable)
            await collection.create_index([("device_id", 1), ("order", 1)])
            await collection.create_index("message_id")
            await collection.create_index("expires_at", expireAfterSeconds=0)
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
            await collection.insert_many([envelope_doc(next(counter), size) for _ in range(BATCH)])
            done += BATCH
        return done

    async def one_writer(limit: int) -> int:
        written = 0
        for _ in range(limit):
            if time.monotonic() >= deadline:
                break
            await collection.insert_one(envelope_doc(next(counter), size))
            written += 1
        return written

    writers = 1 if mode == "single" else CONCURRENCY
    counts = await asyncio.gather(*(one_writer(MAX_DOCS // 4 // writers) for _ in range(writers)))
    return sum(counts)


if __name__ == "__main__":
    print(asyncio.run(measure(400, 3)))
