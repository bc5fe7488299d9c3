"""Life cycle of one device connection, as a transition table.

Rules (everything that moves a connection between states lives here):

1. A connection starts in ``CHALLENGED``: the server has sent its challenge
   and accepts only an ``auth`` frame.
2. A valid ``auth`` moves it to ``AUTHENTICATED``; any other frame before that
   is refused with ``not_authenticated`` and the connection is closed (1008).
3. Only an ``AUTHENTICATED`` connection may ``send``, ``ack``, ``sync`` and
   ``read``; the server
   only delivers to such connections.
4. Any state may move to ``CLOSING`` (server shutdown, abuse, slow reader,
   peer close) and ``CLOSING`` only to ``CLOSED``. Nothing leaves ``CLOSED``.

An illegal move raises :class:`IllegalTransition`: it is a bug in the server,
never the peer's fault.
"""

from __future__ import annotations

from enum import Enum


class ConnectionState(Enum):
    """Where a device connection stands."""

    CHALLENGED = "challenged"
    AUTHENTICATED = "authenticated"
    CLOSING = "closing"
    CLOSED = "closed"


_TRANSITIONS: dict[ConnectionState, frozenset[ConnectionState]] = {
    ConnectionState.CHALLENGED: frozenset({ConnectionState.AUTHENTICATED, ConnectionState.CLOSING}),
    ConnectionState.AUTHENTICATED: frozenset({ConnectionState.CLOSING}),
    ConnectionState.CLOSING: frozenset({ConnectionState.CLOSED}),
    ConnectionState.CLOSED: frozenset(),
}

ALLOWED_FRAMES: dict[ConnectionState, frozenset[str]] = {
    ConnectionState.CHALLENGED: frozenset({"auth"}),
    ConnectionState.AUTHENTICATED: frozenset({"send", "ack", "sync", "read"}),
    ConnectionState.CLOSING: frozenset(),
    ConnectionState.CLOSED: frozenset(),
}
"""Frame types a device may send in each state (rules 1 and 3)."""


class IllegalTransition(RuntimeError):
    """The server tried a move the table does not allow (a local bug)."""


class ConnectionLifecycle:
    """The state of one connection; :meth:`move` enforces the table."""

    def __init__(self) -> None:
        self.state = ConnectionState.CHALLENGED

    def move(self, target: ConnectionState) -> None:
        """Move to ``target``.

        Raises:
            IllegalTransition: the table has no such move from the current state.
        """
        if target not in _TRANSITIONS[self.state]:
            raise IllegalTransition(f"{self.state.value} -> {target.value}")
        self.state = target

    def close(self) -> None:
        """Move to ``CLOSING`` unless already closing or closed (rule 4)."""
        if self.state not in (ConnectionState.CLOSING, ConnectionState.CLOSED):
            self.move(ConnectionState.CLOSING)

    def allows(self, frame_type: str) -> bool:
        """Whether a device may send a frame of this type now."""
        return frame_type in ALLOWED_FRAMES[self.state]
