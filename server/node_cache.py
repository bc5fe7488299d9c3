"""A node's short-lived cache of what every send reads, one load per miss.

Sends read the same few documents over and over (a conversation, its
members, their schools' policies, who blocked whom). Each node keeps them for
a few seconds (``ttl``); a change made through the node forgets the entry at
once, other nodes see it within ``ttl``.

Concurrent misses of one key share a single load ("single flight"): when an
entry expires under load, the hundred sends waiting on it cause one database
read, not a hundred (docs/performance.md measured the stampede at a quarter
of the server's time). Loads are batched: :meth:`TtlCache.get_many` reads
every missing key of a call in one query, and with ``gather`` the keys
every caller misses while a read is in flight go together in the next one
(when a node started, its first hundred sends each read their sender's
blockers, a hundred queries at once in the database, 20-120 ms each; now two).

Entries loaded together do not expire together: each is served for a random
share of ``ttl`` between ``1 - spread`` and 1. A node's first sends load
every sender's entries within a second; with a fixed ``ttl`` they all expired
in the same second again and again, and the reads queued in the database
behind one another and held the sends waiting on them (108 reads of devices
at 43 ms each in one half-rate phase, docs/performance.md).

Negative answers are cached too unless ``negative=False`` (a missing
conversation stays missing for ``ttl``; an unknown device is read again).
Memory is bounded by ``max_entries``; past it the cache starts cold again,
which only costs reads.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from storage.errors import DatabaseUnavailable

K = TypeVar("K")
V = TypeVar("V")

MAX_ENTRIES = 100_000
SPREAD = 0.25
"""Share of ``ttl`` by which an entry may expire early (so that entries loaded
together are read again over a quarter of ``ttl``, not at once)."""


class _Absent:
    """Cached: the key has no value (e.g. an unknown device)."""


_ABSENT = _Absent()


class TtlCache(Generic[K, V]):
    """Values by key for ``ttl`` seconds; concurrent misses share one load.

    Args:
        ttl: seconds an entry is served.
        max_entries: bound on memory (the cache is cleared past it).
        clock: monotonic seconds (tests pass their own).
        negative: keep "no value" answers too (else a missing key is read again).
        spread: an entry is served for ``ttl`` times a random factor between
            ``1 - spread`` and 1 (never longer than ``ttl``).
        rng: where that factor comes from (tests pass a seeded one).
        gather: one read in flight at a time; the keys every caller misses
            meanwhile are read together in the next one (the "DataLoader"
            pattern, as ``server.batch_loader`` without a task of its own): only
            for a cache whose callers all pass the same ``load`` of many keys
            (the first caller's is used). A lone miss is read at once.
    """

    def __init__(
        self,
        ttl: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        negative: bool = True,
        spread: float = SPREAD,
        rng: random.Random | None = None,
        gather: bool = False,
    ) -> None:
        self._ttl = ttl
        self._spread = spread
        self._random = (rng or random.Random()).random  # noqa: S311 - expiry spread, no secret
        self._negative = negative
        self._max = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[float, V | _Absent]] = {}
        """Key → (when it stops being served, value)."""
        self._loading: dict[K, asyncio.Future[V | _Absent]] = {}
        self._gather = gather
        self._reading: asyncio.Future[None] | None = None
        """Done when the read in flight ends (``gather``: one read at a time)."""
        self._next: dict[K, asyncio.Future[V | _Absent]] | None = None
        """The keys of the read waiting for it: every caller that misses adds its own."""

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` for ``key``, read elsewhere (no load needed)."""
        self._keep(key, value)

    def forget(self, key: K) -> None:
        """Drop ``key``; a load in flight for it is not kept either (it may be stale)."""
        self._entries.pop(key, None)
        self._loading.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
        self._loading.clear()

    def _keep(self, key: K, value: V | _Absent) -> None:
        if len(self._entries) >= self._max:
            self._entries.clear()
        served = self._ttl * (1 - self._spread * self._random())
        self._entries[key] = (self._clock() + served, value)

    def _fresh(self, key: K, now: float) -> tuple[float, V | _Absent] | None:
        entry = self._entries.get(key)
        return entry if entry is not None and now < entry[0] else None

    async def get(self, key: K, load: Callable[[K], Awaitable[V | None]]) -> V | None:
        """The value of ``key`` (None if it has none), loading it on a miss."""
        entry = self._fresh(key, self._clock())
        if entry is not None:  # the usual case: no load to build
            return None if isinstance(entry[1], _Absent) else entry[1]

        async def load_one(keys: list[K]) -> Mapping[K, V]:
            value = await load(keys[0])
            return {} if value is None else {keys[0]: value}

        found = await self.get_many((key,), load_one)
        return found.get(key)

    async def get_one(
        self, key: K, load: Callable[[list[K]], Awaitable[Mapping[K, V]]]
    ) -> V | None:
        """:meth:`get` for a cache loaded many keys at a time (``gather``): the
        value of ``key`` (None if it has none), read with others' misses."""
        entry = self._fresh(key, self._clock())
        if entry is not None:  # the usual case: 0.6 us, against 1.8 through get_many
            return None if isinstance(entry[1], _Absent) else entry[1]
        return (await self.get_many((key,), load)).get(key)

    async def get_many(
        self, keys: Iterable[K], load: Callable[[list[K]], Awaitable[Mapping[K, V]]]
    ) -> dict[K, V]:
        """The values of ``keys`` that exist; the missing ones loaded in one call.

        Raises:
            whatever ``load`` raises (for every caller sharing that load).
        """
        now = self._clock()
        values: dict[K, V | _Absent] = {}
        waiting: dict[K, asyncio.Future[V | _Absent]] = {}
        missing: list[K] = []
        for key in dict.fromkeys(keys):
            entry = self._fresh(key, now)
            if entry is not None:
                values[key] = entry[1]
            elif key in self._loading:
                waiting[key] = self._loading[key]
            else:
                missing.append(key)
        if missing and self._next is not None:  # a read waits for the one in flight: join it
            loop = asyncio.get_running_loop()
            for key in missing:
                waiting[key] = self._next[key] = self._loading[key] = _future(loop)
        elif missing:
            await self._load(missing, load, values)
        for key, future in waiting.items():
            values[key] = await future
        return {k: v for k, v in values.items() if not isinstance(v, _Absent)}

    async def _load(
        self,
        keys: list[K],
        load: Callable[[list[K]], Awaitable[Mapping[K, V]]],
        into: dict[K, V | _Absent],
    ) -> None:
        loop = asyncio.get_running_loop()
        futures = {key: _future(loop) for key in keys}
        self._loading.update(futures)
        reading: asyncio.Future[None] | None = None
        try:
            if self._gather:
                if self._reading is not None:  # one read at a time: the next one gathers
                    self._next = futures  # the keys every caller misses meanwhile
                    try:
                        await asyncio.wait([self._reading])  # (not cancelled with this caller)
                    finally:
                        if self._next is futures:
                            self._next = None
                reading = self._reading = loop.create_future()
            found = await load(list(futures))
        except BaseException as exc:
            # The callers sharing this read are not cancelled with the one that led it:
            # they are told the read did not finish (their send answers "retry").
            shared = (
                DatabaseUnavailable("a shared read was cancelled; retry")
                if isinstance(exc, asyncio.CancelledError)
                else exc
            )
            for key, future in futures.items():
                if self._loading.get(key) is future:
                    del self._loading[key]
                future.set_exception(shared)
            raise
        finally:
            if reading is not None:
                if self._reading is reading:
                    self._reading = None
                reading.set_result(None)
        for key, future in futures.items():
            value: V | _Absent = found[key] if key in found else _ABSENT
            if self._loading.get(key) is future:  # not forgotten meanwhile: keep it
                del self._loading[key]
                if self._negative or value is not _ABSENT:
                    self._keep(key, value)
            if key in keys:
                into[key] = value
            future.set_result(value)


def _future(loop: asyncio.AbstractEventLoop) -> asyncio.Future[Any]:
    future = loop.create_future()
    future.add_done_callback(_retrieve)  # a load nobody else waited for: no warning
    return future


def _retrieve(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()
