"""The node cache: one load per miss however many wait, TTL, forgetting (no sockets)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping

import pytest

from server.node_cache import SPREAD, TtlCache
from storage.errors import DatabaseUnavailable


class Source:
    """A slow store that counts its reads."""

    def __init__(self, values: dict[str, int]) -> None:
        self.values = values
        self.reads: list[list[str]] = []
        self.gate = asyncio.Event()

    async def load(self, keys: list[str]) -> Mapping[str, int]:
        self.reads.append(list(keys))
        found = {k: self.values[k] for k in keys if k in self.values}  # read, then slow
        await self.gate.wait()
        return found


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_misses_share_one_load() -> None:
    source = Source({"a": 1, "b": 2})
    cache: TtlCache[str, int] = TtlCache(3.0)
    waiting = [asyncio.create_task(cache.get_many(["a", "b", "x"], source.load)) for _ in range(50)]
    await asyncio.sleep(0)
    source.gate.set()
    results = await asyncio.gather(*waiting)
    assert source.reads == [["a", "b", "x"]]
    assert all(r == {"a": 1, "b": 2} for r in results)


async def test_entries_expire_and_absent_keys_are_kept_only_if_asked() -> None:
    source, clock = Source({"a": 1}), Clock()
    source.gate.set()
    cache: TtlCache[str, int] = TtlCache(3.0, clock=clock)
    strict: TtlCache[str, int] = TtlCache(3.0, clock=clock, negative=False)
    assert await cache.get_many(["a", "x"], source.load) == {"a": 1}
    assert await cache.get_many(["a", "x"], source.load) == {"a": 1}
    assert len(source.reads) == 1  # "x" is known to be missing
    assert await strict.get_many(["x"], source.load) == {}
    assert await strict.get_many(["x"], source.load) == {}
    assert source.reads[-2:] == [["x"], ["x"]]  # read again each time
    clock.now += 3.0
    source.values["a"] = 5
    assert await cache.get("a", _one(source)) == 5


def _one(source: Source) -> Callable[[str], Awaitable[int | None]]:
    async def load(key: str) -> int | None:
        found = await source.load([key])
        return found.get(key)

    return load


async def test_a_key_forgotten_during_its_load_is_not_kept() -> None:
    source = Source({"a": 1})
    cache: TtlCache[str, int] = TtlCache(3.0)
    loading = asyncio.create_task(cache.get_many(["a"], source.load))
    await asyncio.sleep(0)
    cache.forget("a")  # changed here while the old value was being read
    source.values["a"] = 2
    source.gate.set()
    assert await loading == {"a": 1}  # that caller gets what was read
    assert await cache.get_many(["a"], source.load) == {"a": 2}  # nobody else does
    assert len(source.reads) == 2


async def test_a_failed_load_fails_every_waiter_and_is_not_kept() -> None:
    calls = 0

    async def broken(keys: list[str]) -> Mapping[str, int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        raise ConnectionError("down")

    cache: TtlCache[str, int] = TtlCache(3.0)
    results = await asyncio.gather(
        *(cache.get_many(["a"], broken) for _ in range(5)), return_exceptions=True
    )
    assert calls == 1 and all(isinstance(r, ConnectionError) for r in results)
    with pytest.raises(ConnectionError):
        await cache.get_many(["a"], broken)
    assert calls == 2


async def test_a_value_put_is_served_without_a_load_until_it_expires() -> None:
    source, clock = Source({"a": 1}), Clock()
    source.gate.set()
    cache: TtlCache[str, int] = TtlCache(3.0, clock=clock)
    cache.put("a", 7)
    assert await cache.get_many(["a"], source.load) == {"a": 7}
    assert source.reads == []
    clock.now += 3.0
    assert await cache.get_many(["a"], source.load) == {"a": 1}
    assert source.reads == [["a"]]


async def test_entries_loaded_together_expire_spread_over_a_share_of_the_ttl() -> None:
    source, clock = Source({str(k): k for k in range(100)}), Clock()
    source.gate.set()
    cache: TtlCache[str, int] = TtlCache(40.0, clock=clock, rng=random.Random(7))
    keys = list(source.values)
    await cache.get_many(keys, source.load)  # one read loads them all at once
    clock.now += 40.0 * (1 - SPREAD) - 0.01
    await cache.get_many(keys, source.load)
    assert len(source.reads) == 1  # none expires before (1 - SPREAD) * ttl
    reread: list[int] = []
    for _ in range(11):  # the last quarter of the ttl and past it, a second at a time
        clock.now += 1.0
        before = len(source.reads)
        await cache.get_many(keys, source.load)
        reread.append(sum(len(r) for r in source.reads[before:]))
    assert sum(reread) == 100  # every one is read again by the ttl, once
    assert max(reread) <= 25  # and not all at once: at most a quarter a second


async def test_misses_while_a_read_is_in_flight_share_the_next_read() -> None:
    source = Source({"a": 1, "b": 2, "c": 3})
    cache: TtlCache[str, int] = TtlCache(3.0, gather=True)
    alone: TtlCache[str, int] = TtlCache(3.0)
    asked = [["a"], ["b", "x"], ["c"], ["a", "c"]]
    gathered = [asyncio.create_task(cache.get_many(keys, source.load)) for keys in asked]
    await asyncio.sleep(0)
    assert source.reads == [["a"]]  # a lone miss is read at once; the others wait for it
    source.gate.set()
    results = await asyncio.gather(*gathered)
    assert source.reads == [["a"], ["b", "x", "c"]]  # then one read for the three callers
    assert results == [{"a": 1}, {"b": 2}, {"c": 3}, {"a": 1, "c": 3}]  # each its own keys
    await asyncio.gather(*(alone.get_many(keys, source.load) for keys in asked))
    assert len(source.reads) == 2 + 3  # without gather: one read per caller that missed


async def test_a_failed_gathered_read_fails_every_caller_that_joined_it() -> None:
    calls: list[list[str]] = []
    release = asyncio.Event()

    async def broken(keys: list[str]) -> Mapping[str, int]:
        calls.append(keys)
        await release.wait()
        raise ConnectionError("down")

    cache: TtlCache[str, int] = TtlCache(3.0, gather=True)
    asking = [asyncio.create_task(cache.get_many([key], broken)) for key in "abc"]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*asking, return_exceptions=True)
    assert calls == [["a"], ["b", "c"]]
    assert all(isinstance(r, ConnectionError) for r in results)
    source = Source({"a": 1})
    source.gate.set()
    assert await cache.get_many(["a"], source.load) == {"a": 1}  # nothing left waiting


async def test_a_caller_cancelled_while_its_batch_waits_fails_the_callers_that_joined_it() -> None:
    source = Source({"a": 1, "b": 2, "c": 3})
    cache: TtlCache[str, int] = TtlCache(3.0, gather=True)
    first = asyncio.create_task(cache.get_many(["a"], source.load))
    leader = asyncio.create_task(cache.get_many(["b"], source.load))
    joiner = asyncio.create_task(cache.get_many(["c"], source.load))
    await asyncio.sleep(0)
    leader.cancel()
    await asyncio.sleep(0)
    source.gate.set()
    assert await first == {"a": 1}
    with pytest.raises(DatabaseUnavailable):
        await joiner  # told at once (not cancelled itself), not left waiting
    assert await cache.get_many(["b", "c"], source.load) == {"b": 2, "c": 3}


async def test_get_one_serves_a_fresh_entry_and_joins_a_gathered_read() -> None:
    source = Source({"a": 1, "b": 2})
    cache: TtlCache[str, int] = TtlCache(3.0, gather=True)
    first = asyncio.create_task(cache.get_one("a", source.load))
    others = [asyncio.create_task(cache.get_one(key, source.load)) for key in ("b", "x")]
    await asyncio.sleep(0)
    source.gate.set()
    assert [await first, *[await o for o in others]] == [1, 2, None]
    assert source.reads == [["a"], ["b", "x"]]
    assert await cache.get_one("b", source.load) == 2
    assert await cache.get_one("x", source.load) is None
    assert len(source.reads) == 2  # both served from the cache, the absent one too
