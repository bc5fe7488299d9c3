"""A connection's outgoing frames, bounded in bytes (slow readers cannot grow memory).

Live deliveries are *offered*: if the outbox is full the offer fails and the
connection closes as a slow reader (close code 4002); the device catches up
from storage when it reconnects. Catch-up from storage *waits* for room
instead, so a long backlog streams at the reader's pace.

An empty outbox holds no queue and no writer (docs/architecture.md, "Per
connection"): the first frame queued into it calls ``start_writer``, and the
writer takes frames with :meth:`Outbox.next` until it gets ``None``, then ends.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


class Waiters:
    """Coroutines waiting for a condition on their owner's state.

    Nothing is allocated while nobody waits (an ``asyncio.Event`` holds a
    ``deque`` of ≈ 0.8 KiB from the start). The owner calls :meth:`notify`
    when its state moves; each waiter checks its condition again.
    """

    __slots__ = ("_futures",)

    def __init__(self) -> None:
        self._futures: list[asyncio.Future[None]] | None = None

    async def until(self, condition: Callable[[], bool]) -> None:
        """Return once ``condition()`` is true (checked after every :meth:`notify`)."""
        while not condition():
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if self._futures is None:
                self._futures = []
            self._futures.append(future)
            try:
                await future
            finally:
                if self._futures is not None and future in self._futures:
                    self._futures.remove(future)
                    if not self._futures:
                        self._futures = None

    def notify(self) -> None:
        """Wake every waiter to check its condition again."""
        futures, self._futures = self._futures, None
        for future in futures or ():
            if not future.done():
                future.set_result(None)


class Outbox:
    """FIFO of ``(frame type, JSON text)`` with a byte budget.

    Args:
        limit_bytes: the most queued text this connection may hold.
        start_writer: called when a frame is queued and no writer is running;
            the writer it starts calls :meth:`next` until it returns ``None``.
    """

    __slots__ = ("_limit", "_start_writer", "_items", "_bytes", "_writing", "_waiters")

    def __init__(self, limit_bytes: int, start_writer: Callable[[], None]) -> None:
        self._limit = limit_bytes
        self._start_writer = start_writer
        self._items: deque[tuple[str, str]] | None = None
        self._bytes = 0
        self._writing = False
        self._waiters = Waiters()

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def offer(self, kind: str, text: str) -> bool:
        """Queue a frame unless that would exceed the budget (then return False)."""
        if self._items and self._bytes + len(text) > self._limit:
            return False
        self._push(kind, text)
        return True

    async def put(self, kind: str, text: str) -> None:
        """Queue a frame once the outbox is less than half full."""
        await self._waiters.until(self._has_room)
        self._push(kind, text)

    def _has_room(self) -> bool:
        return self._bytes < self._limit // 2

    def _push(self, kind: str, text: str) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append((kind, text))
        self._bytes += len(text)
        if not self._writing:
            self._writing = True
            self._start_writer()

    def next(self) -> tuple[str, str] | None:
        """For the writer: the oldest frame, or ``None`` once everything taken
        was written (the writer then ends; the next frame starts another)."""
        if not self._items:
            self._items = None  # an idle connection keeps no queue
            self._writing = False
            self._waiters.notify()
            return None
        had_room = self._has_room()
        kind, text = self._items.popleft()
        self._bytes -= len(text)
        if not had_room and self._has_room():
            self._waiters.notify()
        return kind, text

    async def flush(self, timeout: float) -> bool:
        """Wait until everything queued is written; False if ``timeout`` ran out."""
        try:
            async with asyncio.timeout(timeout):
                await self._waiters.until(self._written)
        except TimeoutError:
            return False
        return True

    def _written(self) -> bool:
        return not self._writing
