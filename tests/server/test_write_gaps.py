"""Background writes wait for gaps between commits; the purge drops runs of delivered messages."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from server.background import delivered_runs, page_floor
from server.write_gaps import WriteGaps, chunks
from storage.messages import Held

AT = datetime(2037, 9, 1, tzinfo=UTC)


def held(seq: int, *recipients: str) -> Held:
    return Held(f"m{seq}", seq, recipients, AT)


def test_runs_break_at_a_message_still_waiting_for_a_device() -> None:
    messages = [held(2, "a", "b"), held(3, "a"), held(5, "b"), held(6, "a", "b"), held(9, "a")]
    acked = {"a": 9, "b": 5}
    runs = delivered_runs(messages, acked)
    assert [[m.seq for m in run] for run in runs] == [[2, 3, 5], [9]]


def test_a_device_without_a_cursor_holds_every_message_addressed_to_it() -> None:
    messages = [held(1, "a"), held(2, "a", "new")]
    assert [[m.seq for m in r] for r in delivered_runs(messages, {"a": 2})] == [[1]]
    assert delivered_runs([], {"a": 2}) == []


def test_the_floor_stops_below_the_first_message_still_waiting() -> None:
    messages = [held(2, "a"), held(3, "a", "b"), held(5, "a"), held(7, "a")]
    runs = delivered_runs(messages, {"a": 9, "b": 2})  # 3 waits for b
    assert page_floor(messages, runs, highest=8) == (2, False)
    assert page_floor(messages, delivered_runs(messages, {"a": 9, "b": 9}), 8) == (8, True)
    assert page_floor(messages, delivered_runs(messages, {}), 8) == (1, False)
    assert page_floor([], [], highest=40) == (40, True)  # nothing held: the page is clear


def test_chunks_keep_order_and_bound_size() -> None:
    assert [list(c) for c in chunks(list(range(7)), 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunks([], 3)) == []


async def test_a_waiter_goes_as_soon_as_the_sequencer_is_idle() -> None:
    gaps = WriteGaps()
    assert await gaps.wait(0.0)  # idle: no wait at all
    gaps.busy()
    assert not await gaps.wait(0.01)  # still busy: patience ran out
    waiter = asyncio.create_task(gaps.wait(30.0))
    await asyncio.sleep(0)
    assert not waiter.done()
    gaps.idle()
    assert await asyncio.wait_for(waiter, 5.0)


async def test_a_waiter_that_asks_to_settle_goes_only_after_a_quiet_spell() -> None:
    """A message queued and written during the spell starts it again: background
    chunks wait for a lull, not for the millisecond between two commits."""
    gaps = WriteGaps()
    gaps.busy()
    gaps.idle()  # the spell starts now
    waiter = asyncio.create_task(gaps.wait(30.0, settle=2.0))
    await asyncio.sleep(1.0)
    gaps.busy()  # a message queued and written within the spell: it starts again
    gaps.idle()
    await asyncio.sleep(1.5)  # 2.5 s in: past the first spell (2.0), before the next (3.0)
    assert not waiter.done()  # half a second from either end: load cannot decide it
    assert await asyncio.wait_for(waiter, 5.0)
    gaps.busy()
    assert not await gaps.wait(0.05, settle=0.2)  # busy throughout: patience ran out


async def test_in_a_lull_longer_than_the_spell_a_waiter_goes_at_once() -> None:
    """The spell counts from when the gap opened: the chunks of a backlog follow
    one another without sleeping a spell each."""
    gaps = WriteGaps()
    assert await asyncio.wait_for(gaps.wait(30.0, settle=10.0), 5.0)  # idle since the start
    gaps.busy()
    gaps.idle()
    await asyncio.sleep(1.1)
    for _ in range(3):  # a spell of 1 s each would take 3 s
        assert await asyncio.wait_for(gaps.wait(30.0, settle=1.0), 0.5)


async def test_a_command_whose_patience_ran_out_goes_between_two_commits() -> None:
    """Not in the middle of a commit: right after one ends (offer_slot), and the
    sequencer's next commit waits for it (turns_over)."""
    gaps = WriteGaps()
    gaps.busy()  # commits keep coming
    events: list[str] = []

    async def command() -> None:
        async with gaps.turn(0.01):
            events.append("command starts")
            await asyncio.sleep(0.05)
            events.append("command ends")

    task = asyncio.create_task(command())
    await asyncio.sleep(0.1)  # its patience is over, no commit has ended (SLOT_PATIENCE: 1 s)
    assert events == []
    gaps.offer_slot()  # a commit ended
    await gaps.turns_over(5.0)  # the next commit
    events.append("next commit")
    await task
    assert events == ["command starts", "command ends", "next commit"]
    await gaps.turns_over(0.0)  # nothing under way: no wait at all


async def test_a_command_waiting_for_a_slot_goes_when_the_sequencer_goes_idle() -> None:
    gaps = WriteGaps()
    gaps.busy()
    started = asyncio.Event()

    async def command() -> None:
        async with gaps.turn(0.01):
            started.set()

    task = asyncio.create_task(command())
    await asyncio.sleep(0.05)  # waiting for a slot now
    gaps.idle()  # the queue emptied with no commit offering one
    for _ in range(5):
        await asyncio.sleep(0)
    assert started.is_set()
    await task
    gaps.busy()
    gaps.offer_slot()  # no one waits: nothing begins
    await asyncio.wait_for(gaps.turns_over(30.0), 1.0)


async def test_a_command_cancelled_as_its_turn_came_does_not_hold_commits() -> None:
    gaps = WriteGaps()
    gaps.busy()
    ran = False

    async def command() -> None:
        nonlocal ran
        async with gaps.turn(0.01):
            ran = True

    task = asyncio.create_task(command())
    await asyncio.sleep(0.05)  # waiting for a slot now
    gaps.offer_slot()  # its turn begins...
    task.cancel()  # ...and it is cancelled before it could run
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert not ran
    await asyncio.wait_for(gaps.turns_over(30.0), 1.0)  # no turn left under way
