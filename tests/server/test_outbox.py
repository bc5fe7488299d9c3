"""The outbox and the ordering buffer without sockets: a writer asked for on
demand, the byte budget, waits for room and for the flush; late ranges."""

from __future__ import annotations

import asyncio

from server.ordering import OrderingBuffer
from server.outbox import Outbox


class Writers:
    """Counts the writers an outbox asks for."""

    def __init__(self) -> None:
        self.started = 0

    def start(self) -> None:
        self.started += 1


def drain(outbox: Outbox) -> list[str]:
    """What a writer does: take frames until told the outbox is empty."""
    taken = []
    while (item := outbox.next()) is not None:
        taken.append(item[1])
    return taken


async def test_a_writer_is_asked_for_once_per_burst() -> None:
    writers = Writers()
    outbox = Outbox(1000, writers.start)
    assert writers.started == 0  # an idle outbox wants no writer
    assert outbox.offer("deliver", "a") and outbox.offer("deliver", "b")
    assert writers.started == 1
    assert drain(outbox) == ["a", "b"]
    assert outbox.queued_bytes == 0
    assert outbox.offer("deliver", "c")
    assert writers.started == 2
    assert drain(outbox) == ["c"]


async def test_an_offer_past_the_budget_is_refused_but_a_first_frame_is_not() -> None:
    outbox = Outbox(10, Writers().start)
    assert outbox.offer("deliver", "x" * 25)  # alone, a frame always fits
    assert not outbox.offer("deliver", "y")
    assert drain(outbox) == ["x" * 25]
    assert outbox.offer("deliver", "y" * 10)


async def test_put_waits_for_room_and_flush_for_the_writer() -> None:
    outbox = Outbox(100, Writers().start)
    await outbox.put("deliver", "x" * 60)  # half full after this one
    blocked = asyncio.create_task(outbox.put("deliver", "y"))
    await asyncio.sleep(0)
    assert not blocked.done()
    assert not await outbox.flush(timeout=0.01)
    assert outbox.next() == ("deliver", "x" * 60)
    await asyncio.wait_for(blocked, 1)
    assert outbox.next() == ("deliver", "y")
    assert not await outbox.flush(timeout=0.01)  # "y" taken, not yet written
    flushed = asyncio.create_task(outbox.flush(timeout=1))
    await asyncio.sleep(0)
    assert outbox.next() is None
    assert await flushed


async def test_a_cancelled_wait_leaves_the_others_waiting() -> None:
    outbox = Outbox(100, Writers().start)
    await outbox.put("deliver", "x" * 60)
    first = asyncio.create_task(outbox.put("deliver", "a"))
    second = asyncio.create_task(outbox.put("deliver", "b"))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    assert outbox.next() is not None
    await asyncio.wait_for(second, 1)
    assert first.cancelled()
    assert drain(outbox) == ["b"]


def test_a_seq_skipped_late_is_released_once_when_it_arrives() -> None:
    buffer: OrderingBuffer[str] = OrderingBuffer()
    assert buffer.offer("c", 1, "m1") == ["m1"]
    assert buffer.offer("c", 4, "m4") == []
    assert buffer.gaps() == {"c": (2, 3)}
    assert buffer.skip_through("c", 3, late=True) == ["m4"]
    assert buffer.offer("c", 3, "m3") == ["m3"]  # slower than the gap timeout: late
    assert buffer.offer("c", 3, "m3") == []  # a duplicate now
    assert buffer.offer("c", 2, "m2") == ["m2"]
    assert buffer.offer("c", 1, "m1") == []  # delivered in order: a duplicate
    assert buffer.gaps() == {}
