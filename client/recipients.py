"""Which devices a message is encrypted for, and sessions with them.

Device lists come from ``GET /v1/people/{id}/devices?bundles=none``, which
consumes nothing and is cached for a while; prekey bundles (each consumes one
one-time prekey of its device) are asked for only for the devices we have no
pairwise session with yet (``?bundles=d_1,d_2``), and a session is started from
each (X3DH, docs/protocol-e2e.md §4). A device without published keys is
skipped: it cannot be encrypted for yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from client.http import BRIDGE_KIND, Contact, HttpApi
from client.state import DeviceState
from crypto import InvalidMessage

__all__ = ["DeviceDirectory", "Reach"]

log = logging.getLogger(__name__)


@dataclass
class Reach:
    """The devices we can encrypt for, each with its person."""

    devices: dict[str, str] = field(default_factory=dict)
    """Device id → person id, in listing order (our own device never included)."""
    bridge: bool = False
    """Some device is an email bridge: not end to end beyond the school's server."""

    def of_others(self, me: str) -> list[str]:
        """Devices of people other than ``me``.

        Args:
            me: Our person id.

        Returns:
            The device ids.
        """
        return [d for d, p in self.devices.items() if p != me]


class DeviceDirectory:
    """Cached device lists and on-demand sessions for one client."""

    def __init__(
        self,
        state: DeviceState,
        connection: Callable[[], tuple[HttpApi, str]],
        clock: Callable[[], float],
        cache_seconds: float,
    ) -> None:
        """Wrap a device state.

        Args:
            state: Our device state (sessions are started in its book).
            connection: Returns the REST API and our session token (raises
                ``ClientError`` when not connected).
            clock: Seconds since the epoch.
            cache_seconds: How long a device list is reused.
        """
        self._state = state
        self._connection = connection
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._contacts: dict[str, tuple[float, Contact]] = {}

    def clear(self) -> None:
        """Forget every cached device list (a send named an unknown device)."""
        self._contacts.clear()

    async def contact(self, person_id: str, refresh: bool = False) -> Contact:
        """A person's devices, without bundles (nothing consumed).

        Args:
            person_id: The person.
            refresh: Ignore the cache.

        Returns:
            The contact.

        Raises:
            ApiError: refused (``not_found``).
            ClientError: not connected or unreachable.
        """
        cached = self._contacts.get(person_id)
        if not refresh and cached is not None and self._clock() - cached[0] < self._cache_seconds:
            return cached[1]
        api, token = self._connection()
        contact = await api.devices(token, person_id)
        self._contacts[person_id] = (self._clock(), contact)
        return contact

    async def reachable(self, person_ids: Iterable[str]) -> Reach:
        """Devices of these people we have, or can now start, a session with.

        Args:
            person_ids: The people (ourselves included for our other devices).

        Returns:
            The reachable devices.

        Raises:
            ApiError: a listing was refused.
            ClientError: not connected or unreachable.
        """
        reach = Reach()
        book = self._state.book
        for person_id in dict.fromkeys(person_ids):
            contact = await self.contact(person_id)
            listed = [d for d in contact.devices if d.device_id != self._state.device_id]
            missing = [d.device_id for d in listed if not book.has_session(d.device_id)]
            if missing:
                await self._start_sessions(person_id, missing)
            for device in listed:
                if book.has_session(device.device_id) and device.device_id not in reach.devices:
                    reach.devices[device.device_id] = person_id
                    reach.bridge = reach.bridge or device.kind == BRIDGE_KIND
        return reach

    async def _start_sessions(self, person_id: str, device_ids: list[str]) -> None:
        api, token = self._connection()
        with_bundles = await api.devices(token, person_id, bundles=device_ids)
        book = self._state.book
        for device in with_bundles.devices:
            if device.device_id not in device_ids or device.bundle is None:
                continue
            try:
                book.pin(device.device_id, device.identity_key)
                book.start(self._state.keys, device.device_id, device.bundle)
            except InvalidMessage:
                log.warning("device %s: bad bundle, skipped", device.device_id)
