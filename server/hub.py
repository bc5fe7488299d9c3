"""Which device is connected to this node, and live delivery to it.

The hub is in-memory and per node: it only knows the connections it holds.
A device has at most one connection; a newer one supersedes the older, which
is closed with code 4001.
"""

from __future__ import annotations

from typing import Protocol


class LiveConnection(Protocol):
    device_id: str
    person_id: str

    def deliver_live(self, conversation: str, seq: int, kind: str, text: str) -> None: ...

    def notify(self, kind: str, text: str) -> None: ...

    async def supersede(self) -> None: ...


class Hub:
    def __init__(self) -> None:
        self._connections: dict[str, LiveConnection] = {}
        self._by_person: dict[str, tuple[str, ...]] = {}
        """A person's device ids here: a tuple (48 bytes for one device, a set is 216)."""

    def __len__(self) -> int:
        return len(self._connections)

    def attach(self, connection: LiveConnection) -> LiveConnection | None:
        """Register ``connection``; returns the one it replaces, if any."""
        previous = self._connections.get(connection.device_id)
        self._connections[connection.device_id] = connection
        devices = self._by_person.get(connection.person_id, ())
        if connection.device_id not in devices:
            self._by_person[connection.person_id] = (*devices, connection.device_id)
        return previous

    def detach(self, connection: LiveConnection) -> None:
        if self._connections.get(connection.device_id) is connection:
            del self._connections[connection.device_id]
            devices = self._by_person.get(connection.person_id, ())
            others = tuple(d for d in devices if d != connection.device_id)
            if others:
                self._by_person[connection.person_id] = others
            else:
                self._by_person.pop(connection.person_id, None)

    def get(self, device_id: str) -> LiveConnection | None:
        return self._connections.get(device_id)

    def notify(self, device_id: str, kind: str, text: str) -> bool:
        """Send an unsequenced frame (e.g. ``prekeys_low``) if the device is here."""
        connection = self._connections.get(device_id)
        if connection is None:
            return False
        connection.notify(kind, text)
        return True

    def of_people(self, person_ids: list[str]) -> list[LiveConnection]:
        """Connections of these people's devices held by this node."""
        return [
            self._connections[d]
            for p in person_ids
            for d in self._by_person.get(p, ())
            if d in self._connections
        ]

    def connections(self) -> list[LiveConnection]:
        return list(self._connections.values())
