"""Time, injected: the server asks a :class:`Clock`, tests hand in a :class:`FrozenClock`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        # Millisecond precision: what BSON dates store, so stored == returned.
        t = datetime.now(UTC)
        return t.replace(microsecond=t.microsecond // 1000 * 1000)


class FrozenClock:
    """A clock that moves only when told to (tests of expiry and limits)."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile; True if it is set.

    The pause of every background loop of a node: shutdown never waits a
    whole interval.
    """
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


async def every(stop: asyncio.Event, seconds: float, work: Callable[[], Awaitable[object]]) -> None:
    """Run ``work`` after each pause of ``seconds`` until ``stop`` is set (never after)."""
    while not await sleep_or_stop(stop, seconds):
        await work()
