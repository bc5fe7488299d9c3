"""The embedded database child keeps the oplog Carnet asks for."""

from __future__ import annotations

from pathlib import Path

from pymongo import AsyncMongoClient

from storage.embedded import EmbeddedDatabase


async def oplog_after_inserts(directory: Path, inserts: int, **options: int) -> int:
    database = EmbeddedDatabase(directory, **options)
    uri = await database.start()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(uri)
    try:
        for start in range(0, inserts, 1000):
            await client.t.x.insert_many([{"i": i} for i in range(start, start + 1000)])
        return await client.local["oplog.rs"].count_documents({})
    finally:
        await client.close()
        await database.stop()


async def test_the_oplog_is_capped_at_the_entries_asked_for(tmp_path: Path) -> None:
    # SecantusDB's own cap (100,000) would keep all 5,000.
    assert await oplog_after_inserts(tmp_path, 5000, oplog_entries=2000) == 2000
