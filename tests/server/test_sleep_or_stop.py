"""The pause of every background loop: the whole interval, or until shutdown."""

from __future__ import annotations

import asyncio

from server.clock import sleep_or_stop


async def test_it_sleeps_the_interval_when_nothing_stops_it() -> None:
    assert await sleep_or_stop(asyncio.Event(), 0.01) is False


async def test_it_ends_as_soon_as_stop_is_set() -> None:
    stop = asyncio.Event()
    sleeper = asyncio.create_task(sleep_or_stop(stop, 3600))
    await asyncio.sleep(0)
    assert not sleeper.done()
    stop.set()
    assert await asyncio.wait_for(sleeper, 5.0) is True
