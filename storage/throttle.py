"""Fixed-window failure counters shared by every node (enrolment brute force).

Documents: ``throttle {_id: key, count, window_end}``, removed by a TTL index
once their window is over. Counting in the database, not in memory, keeps the
limit true when a département runs several nodes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

Doc = dict[str, Any]


class ThrottleRepository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._counters = db["throttle"]

    async def create_indexes(self) -> None:
        await self._counters.create_index("window_end", expireAfterSeconds=0, name="ttl")

    async def count(self, key: str, now: datetime) -> tuple[int, datetime | None]:
        """Failures recorded for ``key`` in its current window, and when it ends."""
        doc = await self._counters.find_one({"_id": key, "window_end": {"$gt": now}})
        if doc is None:
            return 0, None
        return int(doc["count"]), doc["window_end"]

    async def record_failure(self, key: str, now: datetime, window: timedelta) -> int:
        """Count one failure for ``key``; returns the count in the current window."""
        doc = await self._counters.find_one_and_update(
            {"_id": key, "window_end": {"$gt": now}},
            {"$inc": {"count": 1}},
            return_document=True,
        )
        if doc is not None:
            return int(doc["count"])
        fresh = {"count": 1, "window_end": now + window}
        try:
            await self._counters.replace_one({"_id": key}, fresh, upsert=True)
        except DuplicateKeyError:  # another node started the window at the same time
            return await self.record_failure(key, now, window)
        return 1
