"""Per-conversation ordering of live deliveries for one device (sans-I/O).

Messages of a conversation must reach a device in ``seq`` order. Live
deliveries can arrive out of order: two senders' writes commit in another
order than their sequence numbers, and another node's messages come through a
change stream. This buffer holds a message until every lower seq has been
delivered or is known not to concern the device.

Rules:

1. Each conversation has an ``expected`` seq: everything below it has been
   delivered or skipped. A message at ``expected`` is released with the run of
   held messages that follows it.
2. A message above ``expected`` is held; the caller learns of the gap through
   :meth:`gaps` and resolves it from the database (deliver what is stored for
   the device, then :meth:`skip_through` the rest).
3. A seq is *skipped* when it is not for this device (its own send, a
   message addressed to other devices, a failed write). A skipped seq that
   later arrives anyway (a write slower than the gap timeout) is released
   late rather than lost; anything else below ``expected`` is a duplicate.
4. At most ``max_held`` messages are held per conversation; past that the gap
   is skipped at once (the device can always ``sync``).
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")
MAX_LATE_RANGES = 32


class _Stream(Generic[T]):
    """One conversation's position (one per conversation of a connected device:
    slots, and no list until a range is skipped late)."""

    __slots__ = ("expected", "held", "late")

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.held: dict[int, T] = {}
        self.late: tuple[tuple[int, int], ...] = ()
        """Ranges skipped by gap resolution: a message there is released late."""


class OrderingBuffer(Generic[T]):
    __slots__ = ("_max_held", "_streams")

    def __init__(self, max_held: int = 1000) -> None:
        self._max_held = max_held
        self._streams: dict[str, _Stream[T]] = {}

    def start(self, conversation: str, expected: int) -> None:
        """Set where a conversation's stream stands (after catch-up from storage)."""
        stream = self._streams.get(conversation)
        if stream is None:
            self._streams[conversation] = _Stream(expected)
        elif expected > stream.expected:
            stream.expected = expected

    def offer(self, conversation: str, seq: int, item: T) -> list[T]:
        """A message arrived; returns what may be delivered now, in order."""
        stream = self._streams.setdefault(conversation, _Stream(1))
        if seq < stream.expected:
            for i, (low, high) in enumerate(stream.late):
                if low <= seq <= high:
                    parts = ((low, seq - 1), (seq + 1, high))
                    kept = tuple(r for r in parts if r[0] <= r[1])
                    stream.late = stream.late[:i] + kept + stream.late[i + 1 :]
                    return [item]
            return []
        stream.held[seq] = item
        released = self._release(stream)
        if len(stream.held) > self._max_held:
            released += self.skip_through(conversation, min(stream.held) - 1, late=True)
        return released

    def skip(self, conversation: str, seq: int) -> list[T]:
        """``seq`` does not concern this device (e.g. its own send)."""
        stream = self._streams.setdefault(conversation, _Stream(1))
        if seq == stream.expected:
            stream.expected += 1
            return self._release(stream)
        if seq > stream.expected:
            stream.held.setdefault(seq, _SKIPPED)  # type: ignore[arg-type]
        return []

    def skip_through(self, conversation: str, seq: int, late: bool = False) -> list[T]:
        """Everything up to ``seq`` is delivered or not for this device.

        Args:
            conversation: the stream.
            seq: the last seq to consider handled.
            late: the skipped seqs may still arrive (gap resolution): release
                them then instead of dropping them as duplicates.
        """
        stream = self._streams.setdefault(conversation, _Stream(1))
        if seq < stream.expected:
            return []
        if late:
            stream.late = (*stream.late, (stream.expected, seq))[-MAX_LATE_RANGES:]
        released = [item for s, item in sorted(stream.held.items()) if s <= seq]
        stream.held = {s: item for s, item in stream.held.items() if s > seq}
        stream.expected = seq + 1
        return [i for i in released if i is not _SKIPPED] + self._release(stream)

    def acknowledged_through(self, conversation: str, seq: int) -> list[T]:
        """The device acknowledged everything up to ``seq``: drop what is held
        there (duplicates) and start the stream after it."""
        stream = self._streams.setdefault(conversation, _Stream(1))
        if seq < stream.expected:
            return []
        stream.held = {s: item for s, item in stream.held.items() if s > seq}
        stream.expected = seq + 1
        return self._release(stream)

    def gaps(self) -> dict[str, tuple[int, int]]:
        """Conversation → (first missing seq, last missing seq) where messages are held."""
        return {
            c: (s.expected, min(s.held) - 1)
            for c, s in self._streams.items()
            if s.held and min(s.held) > s.expected
        }

    def expected(self, conversation: str) -> int | None:
        stream = self._streams.get(conversation)
        return stream.expected if stream else None

    def _release(self, stream: _Stream[T]) -> list[T]:
        released: list[T] = []
        while stream.expected in stream.held:
            item = stream.held.pop(stream.expected)
            if item is not _SKIPPED:
                released.append(item)
            stream.expected += 1
        return released


class _Skipped:
    def __repr__(self) -> str:
        return "<skipped>"


_SKIPPED = _Skipped()
