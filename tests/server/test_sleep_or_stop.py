"""The pause of every background loop: the whole interval, or until shutdown; and
``every``, the loop that works after each pause."""

from __future__ import annotations

import asyncio

from server.clock import every, sleep_or_stop


async def test_it_sleeps_the_interval_when_nothing_stops_it() -> None:
    assert await sleep_or_stop(asyncio.Event(), 0.01) is False


async def test_it_ends_as_soon_as_stop_is_set() -> None:
    stop = asyncio.Event()
    sleeper = asyncio.create_task(sleep_or_stop(stop, 3600))
    await asyncio.sleep(0)
    assert not sleeper.done()
    stop.set()
    assert await asyncio.wait_for(sleeper, 5.0) is True


async def test_every_works_after_each_pause_and_never_after_stop() -> None:
    stop = asyncio.Event()
    done: list[int] = []

    async def work() -> None:
        done.append(len(done))
        if len(done) == 3:
            stop.set()

    await asyncio.wait_for(every(stop, 0.001, work), 5.0)
    assert done == [0, 1, 2]  # the third set stop: no fourth, and it returned
