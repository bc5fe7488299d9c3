"""Concurrent reads of one kind coalesced into one query (a reconnect storm's cost).

When thousands of devices log in at once (a school's Wi-Fi comes back, a
node restarts), each login reads its device, its cursors and its
conversations: one query each per device. A :class:`BatchLoader` gathers
the keys asked for while its previous query is in flight and reads them
together in the next one, so N concurrent logins cost about N / batch
queries instead of N (the "DataLoader" pattern). A lone request is read at
once: batching adds no wait when there is no crowd.

Not a cache: every answer comes from a query issued after it was asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

MAX_BATCH = 500


class LoaderStopped(Exception):
    """The loader is not running (the node is starting or stopping)."""


class BatchLoader(Generic[K, V]):
    """``load(key)`` answered by ``load_many(keys)``, one query in flight at a time.

    :meth:`run` is the loader's one task (in the node's TaskGroup); callers
    queue keys and wait for the batch that reads them.

    Args:
        load_many: reads many keys at once; keys it does not return get ``missing``.
        missing: the answer for a key ``load_many`` did not return.
        max_batch: keys per query at most.
    """

    def __init__(
        self,
        load_many: Callable[[list[K]], Awaitable[Mapping[K, V]]],
        missing: V,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._load_many = load_many
        self._missing = missing
        self._max_batch = max_batch
        self._queued: dict[K, list[asyncio.Future[V]]] = {}
        self._wake = asyncio.Event()
        self._running = False

    async def run(self, stop: asyncio.Event) -> None:
        """Read what is asked for until ``stop``; then fail what is still queued."""
        self._running = True
        try:
            while not stop.is_set():
                if not self._queued:
                    self._wake.clear()
                    waiting = asyncio.ensure_future(self._wake.wait())
                    stopping = asyncio.ensure_future(stop.wait())
                    try:
                        await asyncio.wait({waiting, stopping}, return_when="FIRST_COMPLETED")
                    finally:
                        waiting.cancel()
                        stopping.cancel()
                    continue
                await self._read_batch()
        finally:
            self._running = False
            for futures in self._queued.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(LoaderStopped())
            self._queued.clear()

    async def load(self, key: K) -> V:
        """The value of ``key``, read together with the keys asked for meanwhile.

        Raises:
            LoaderStopped: the loader is not running.
            whatever ``load_many`` raises, to every caller of that batch.
        """
        if not self._running:
            raise LoaderStopped
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._queued.setdefault(key, []).append(future)
        self._wake.set()
        return await future

    async def _read_batch(self) -> None:
        keys = list(self._queued)[: self._max_batch]
        waiting = {k: self._queued.pop(k) for k in keys}
        try:
            found = await self._load_many(keys)
        except Exception as exc:  # every caller of this batch learns of it
            for futures in waiting.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        for key, futures in waiting.items():
            value = found.get(key, self._missing)
            for future in futures:
                if not future.done():
                    future.set_result(value)
