"""Documents the database wrote during a phase, from ``serverStatus`` opcounters.

Issue 9: a group message must cost O(1) database writes in the number of
members (stored once; per-device delivery state is a cursor). The harness
reads the database's ``opcounters`` (``insert``, ``update``, ``delete``)
before and after a phase, on a separate connection, so every write of the
server is counted whatever repository made it. The two ``serverStatus``
commands are not writes. SecantusDB counts write *commands* (an
``insert_many`` of 10 documents counts 1, as does an ``update_many``); MongoDB
counts inserted documents. Single-document writes (a group message, a cursor,
a receipt) count one either way.
"""

from __future__ import annotations

from typing import Any

from pymongo import MongoClient

from bench.servers import ServerProcess

WRITES = ("insert", "update", "delete")
READS = ("query", "getmore")
"""Reads are reported beside writes (``getmore``: change streams and long cursors)."""


class WriteCounter:
    """Inserts, updates and deletes between :meth:`start` and :meth:`stop`."""

    def __init__(self, uri: str | None) -> None:
        self.uri = uri
        self._start: dict[str, int] | None = None
        self.delta: dict[str, int] | None = None

    @classmethod
    def of(cls, server: ServerProcess) -> WriteCounter:
        return cls(server.database_uri)

    def _read(self) -> dict[str, int] | None:
        if self.uri is None:
            return None
        client: MongoClient[dict[str, Any]] = MongoClient(self.uri, serverSelectionTimeoutMS=5000)
        try:
            counters = client.admin.command("serverStatus").get("opcounters", {})
        finally:
            client.close()
        return {k: int(counters.get(k, 0)) for k in WRITES + READS}

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> None:
        end = self._read()
        if self._start is not None and end is not None:
            self.delta = {k: end[k] - self._start[k] for k in WRITES + READS}
