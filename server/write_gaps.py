"""Group commits first: background writes go in the gaps between them.

The embedded database runs every command in one process, one after another:
a background ``bulk_write`` of a hundred cursor updates or a hundred purged
ciphertexts (0.4–4 ms a document on SecantusDB, docs/performance.md) holds
every message waiting behind it for 60 ms or more. So the node's background writers
(the ciphertext purge, the cursor and receipt flush) write in small chunks and,
before each chunk, wait until the sequencer has nothing to write — or until
their own patience runs out, so that they are never starved for good.

The sequencer says when it is busy (:meth:`WriteGaps.busy`) and when its
queue is empty (:meth:`WriteGaps.idle`); nothing here touches the database.
Writers may also ask for the queue to have stayed empty a little while
(:data:`SETTLE`), so that a chunk does not start in the millisecond between
two commits of a steady load.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

CHUNK = 10
"""Documents a background writer writes in one command at most. Each command
costs the embedded database ≈ 1.5 ms on top of its documents: dropping the
ciphertext of a range of 4 messages costs 933 µs a message, of 10 553 µs, of
40 537 µs (docs/performance.md). Ten keep the overhead small and a commit that
arrives just after a chunk started waits ≈ 6.5 ms (25–45 ms while commits, the
change stream and the load share the cores)."""


SETTLE = 0.02
"""Seconds without a message queued before a background chunk starts (or its
patience ends): at 1,100 messages/s the sequencer is idle a millisecond or two
between commits, and a chunk started there held the next commit 25–45 ms."""


class WriteGaps:
    """Whether the node's group commit has work, and a way to wait until it has none."""

    def __init__(self) -> None:
        self._gap = asyncio.Event()
        self._gap.set()
        self._idle_since = -math.inf
        """Event-loop time at which the gap last opened (idle since the start): a
        message queued and written since moves it, and so breaks a settle spell."""

    def busy(self) -> None:
        """Messages are waiting to be written (the sequencer queued one)."""
        self._gap.clear()

    def idle(self) -> None:
        """Nothing waits to be written and no batch is in flight."""
        if not self._gap.is_set():
            self._idle_since = asyncio.get_running_loop().time()
        self._gap.set()

    @property
    def open(self) -> bool:
        return self._gap.is_set()

    async def wait(self, longest: float, settle: float = 0.0) -> bool:
        """Until the sequencer is idle, and has stayed idle for ``settle`` seconds
        with no message queued meanwhile; or ``longest`` seconds. True if it is
        idle when the wait ends.

        At half load the sequencer is idle for a millisecond or two between
        commits: a background chunk started there holds the next commit for
        all its length. ``settle`` keeps background writes for real lulls
        (and for the end of their patience). The spell counts from when the
        gap opened, not from the call: in a long lull the chunks of a backlog
        go one after another (the purge caught up at ≈ 250 messages a second
        when each chunk slept ``settle`` first, docs/performance.md).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + longest
        while True:
            remaining = deadline - loop.time()
            if not self._gap.is_set():
                if remaining <= 0:
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._gap.wait(), remaining)
                if not self._gap.is_set():
                    return False
                remaining = deadline - loop.time()
            if settle <= 0 or remaining <= 0:
                return True
            quiet = loop.time() - self._idle_since
            if quiet >= settle:  # a lull already long enough: the chunks of a
                return True  # backlog follow one another at once
            await asyncio.sleep(min(settle - quiet, remaining))  # then look again


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``items`` cut in runs of at most ``size``, in order."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
