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
Each background command runs in a turn (:meth:`WriteGaps.turn`): in a lull,
or, once its patience ran out, right after a commit ends
(:meth:`WriteGaps.offer_slot`); the sequencer starts its next commit only once
the turn is over (:meth:`WriteGaps.turns_over`). The embedded database runs
a command that arrives during another one beside it, and both take longer:
a chunk sent in the middle of a commit delayed the messages of that commit
and of the next (docs/performance.md, session 7).

Writers may also ask for the queue to have stayed empty a little while
(:data:`SETTLE`), so that a chunk does not start in the millisecond between
two commits of a steady load.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, TypeVar

from server.clock import sleep_or_stop

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


SLOT_PATIENCE = 1.0
"""Seconds a background command whose patience ran out waits at most for the
end of a commit (one ends every few milliseconds under load) before it goes anyway."""
TURN_LIMIT = 0.1
"""Seconds the sequencer waits at most for a background command to end before
its next commit (a chunk takes 3–40 ms; a slow database must not stall sends)."""


class WriteGaps:
    """Whether the node's group commit has work, a way to wait until it has none,
    and turns that keep background commands and commits from overlapping."""

    def __init__(self) -> None:
        self._gap = asyncio.Event()
        self._gap.set()
        self._idle_since = -math.inf
        """Event-loop time at which the gap last opened (idle since the start): a
        message queued and written since moves it, and so breaks a settle spell."""
        self._slots: deque[asyncio.Future[None]] = deque()
        """Background commands whose patience ran out, waiting for the end of a commit."""
        self._turns = 0
        """Background commands under way."""
        self._no_turn = asyncio.Event()
        self._no_turn.set()

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
                if not await sleep_or_stop(self._gap, remaining):
                    return False
                remaining = deadline - loop.time()
            if settle <= 0 or remaining <= 0:
                return True
            quiet = loop.time() - self._idle_since
            if quiet >= settle:  # a lull already long enough: the chunks of a
                return True  # backlog follow one another at once
            await asyncio.sleep(min(settle - quiet, remaining))  # then look again

    @contextlib.asynccontextmanager
    async def turn(self, longest: float, settle: float = 0.0) -> AsyncIterator[None]:
        """A background command's turn: in a gap (:meth:`wait`), or, once
        ``longest`` has passed with commits still coming, right after one of
        them (:meth:`offer_slot`, at most :data:`SLOT_PATIENCE` later).

        Run the command inside the ``async with``: the sequencer starts its next
        commit only once the turn is over (:meth:`turns_over`). A command whose
        patience ran out used to go at once, in the middle of a commit: the
        database ran both together, and both took longer (docs/performance.md,
        session 7).
        """
        if await self.wait(longest, settle) or not await self._next_slot():
            self._begin()  # a slot given has begun the turn already
        try:
            yield
        finally:
            self._end()

    def _begin(self) -> None:
        self._turns += 1
        self._no_turn.clear()

    def _end(self) -> None:
        self._turns -= 1
        if not self._turns:
            self._no_turn.set()

    async def _next_slot(self) -> bool:
        """Until the sequencer ends a commit and offers a slot (True), or goes
        idle, or :data:`SLOT_PATIENCE` (False: go then, as before)."""
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._slots.append(slot)
        idle = asyncio.ensure_future(self._gap.wait())
        either: set[asyncio.Future[Any]] = {slot, idle}
        try:
            await asyncio.wait(either, timeout=SLOT_PATIENCE, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled: a turn given meanwhile will not be taken
            if slot.done() and not slot.cancelled():
                self._end()
            raise
        finally:
            idle.cancel()
            slot.cancel()  # no-op once given; otherwise offered to no one any more
        return not slot.cancelled()

    def offer_slot(self) -> None:
        """A commit ended: the oldest background command still waiting for one
        begins its turn (before the sequencer can start another commit)."""
        while self._slots:
            slot = self._slots.popleft()
            if not slot.done():
                slot.set_result(None)
                self._begin()
                return

    async def turns_over(self, longest: float = TURN_LIMIT) -> None:
        """Until no background command is under way, or ``longest`` seconds."""
        if not self._no_turn.is_set():
            await sleep_or_stop(self._no_turn, longest)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``items`` cut in runs of at most ``size``, in order."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
