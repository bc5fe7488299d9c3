"""Concurrent loads coalesced into batches; failures reach every caller (no sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from server.batch_loader import BatchLoader, LoaderStopped


async def test_concurrent_loads_share_batches_and_missing_keys_get_the_default() -> None:
    batches: list[list[str]] = []

    async def read(keys: list[str]) -> Mapping[str, int]:
        batches.append(keys)
        await asyncio.sleep(0.01)
        return {k: int(k) for k in keys if k != "7"}

    loader: BatchLoader[str, int] = BatchLoader(read, -1, max_batch=40)
    stop = asyncio.Event()
    runner = asyncio.create_task(loader.run(stop))
    await asyncio.sleep(0)
    first = await loader.load("1")  # alone: read at once
    results = await asyncio.gather(*(loader.load(str(i % 50)) for i in range(100)))
    stop.set()
    await runner
    assert first == 1 and batches[0] == ["1"]
    assert results == [(-1 if i % 50 == 7 else i % 50) for i in range(100)]
    assert len(batches) <= 1 + 2  # 50 distinct keys, at most 40 per batch
    assert all(len(b) <= 40 for b in batches)


async def test_a_failed_batch_fails_its_callers_and_a_stopped_loader_refuses() -> None:
    async def broken(keys: list[str]) -> Mapping[str, int]:
        raise ConnectionError("down")

    loader: BatchLoader[str, int] = BatchLoader(broken, 0)
    with pytest.raises(LoaderStopped):
        await loader.load("a")
    stop = asyncio.Event()
    runner = asyncio.create_task(loader.run(stop))
    await asyncio.sleep(0)
    results = await asyncio.gather(loader.load("a"), loader.load("b"), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    stop.set()
    await runner
