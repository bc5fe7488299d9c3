"""A connection's outgoing frames, bounded in bytes (slow readers cannot grow memory).

Live deliveries are *offered*: if the outbox is full the offer fails and the
connection is closed as a slow reader (close code 4002); the device catches
up from storage when it reconnects. Catch-up from storage *waits* for room
instead, so a long backlog streams at the reader's pace.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Outbox:
    """FIFO of ``(frame type, JSON text)`` with a byte budget.

    Args:
        limit_bytes: the most queued text this connection may hold.
    """

    def __init__(self, limit_bytes: int) -> None:
        self._limit = limit_bytes
        self._items: deque[tuple[str, str]] = deque()
        self._bytes = 0
        self._nonempty = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self.overflowed = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def offer(self, kind: str, text: str) -> bool:
        """Queue a frame unless that would exceed the budget (then flag overflow)."""
        if self._items and self._bytes + len(text) > self._limit:
            self.overflowed.set()
            return False
        self._push(kind, text)
        return True

    async def put(self, kind: str, text: str) -> None:
        """Queue a frame once the outbox is at most half full."""
        await self._room.wait()
        self._push(kind, text)

    def _push(self, kind: str, text: str) -> None:
        self._items.append((kind, text))
        self._bytes += len(text)
        self._nonempty.set()
        self._empty.clear()
        if self._bytes >= self._limit // 2:
            self._room.clear()

    async def get(self) -> tuple[str, str]:
        """The oldest frame, waiting for one if needed."""
        while not self._items:
            self._nonempty.clear()
            await self._nonempty.wait()
        kind, text = self._items.popleft()
        self._bytes -= len(text)
        if self._bytes < self._limit // 2:
            self._room.set()
        return kind, text

    def task_done(self) -> None:
        """The writer has sent what :meth:`get` returned."""
        if not self._items:
            self._empty.set()

    async def flush(self, timeout: float) -> bool:
        """Wait until everything queued is written; False if ``timeout`` ran out."""
        try:
            await asyncio.wait_for(self._empty.wait(), timeout)
        except TimeoutError:
            return False
        return True
