"""Which device is connected to this node, and live delivery to it.

The hub is in-memory and per node: it only knows the connections it holds.
A device has at most one connection; a newer one supersedes the older, which
is closed with code 4001.
"""

from __future__ import annotations

from typing import Protocol


class LiveConnection(Protocol):
    device_id: str

    def deliver_live(self, conversation: str, seq: int, kind: str, text: str) -> None: ...

    def notify(self, kind: str, text: str) -> None: ...

    async def supersede(self) -> None: ...


class Hub:
    def __init__(self) -> None:
        self._connections: dict[str, LiveConnection] = {}

    def __len__(self) -> int:
        return len(self._connections)

    def attach(self, connection: LiveConnection) -> LiveConnection | None:
        """Register ``connection``; returns the one it replaces, if any."""
        previous = self._connections.get(connection.device_id)
        self._connections[connection.device_id] = connection
        return previous

    def detach(self, connection: LiveConnection) -> None:
        if self._connections.get(connection.device_id) is connection:
            del self._connections[connection.device_id]

    def get(self, device_id: str) -> LiveConnection | None:
        return self._connections.get(device_id)

    def notify(self, device_id: str, kind: str, text: str) -> bool:
        """Send an unsequenced frame (e.g. ``prekeys_low``) if the device is here."""
        connection = self._connections.get(device_id)
        if connection is None:
            return False
        connection.notify(kind, text)
        return True

    def connections(self) -> list[LiveConnection]:
        return list(self._connections.values())
