"""Pairwise session bookkeeping: which session to use with which peer device (pure).

Rules (all of them are enforced by :class:`SessionBook`):

1. Per peer device there is a list of sessions, newest-used first; the first one
   encrypts. At most :data:`MAX_SESSIONS_PER_DEVICE` are kept, the least recently
   used dropped.
2. Decryption tries the sessions in order; the one that succeeds moves to the front.
   This is how two devices that started sessions with each other at the same time
   converge on one (Signal's session archiving does the same).
3. A prekey message that no kept session decrypts creates a new session with
   :func:`crypto.accept_session`, put in front; the one-time prekey it used is
   deleted from the device keys. A prekey message whose X3DH values (identity key,
   ephemeral key) are those of a kept session never creates a second session: it is
   a replay.
4. A device id is bound to one identity key (trust on first use): the key seen
   first, from the directory or from the first prekey message, is pinned; a
   different key for the same device id is refused (the server cannot swap keys).
5. Failures change nothing and raise :class:`crypto.InvalidMessage`.
"""

from __future__ import annotations

from typing import Any

from crypto import (
    DeviceKeys,
    InvalidMessage,
    PreKeyBundle,
    Session,
    accept_session,
    initiate_session,
    parse_envelope,
)
from crypto.encoding import b64url_decode, b64url_encode
from crypto.envelope import PreKeyMessage
from crypto.hazmat.kdf import constant_time_equal

__all__ = ["MAX_SESSIONS_PER_DEVICE", "SessionBook"]

MAX_SESSIONS_PER_DEVICE = 4


class SessionBook:
    """Sessions and pinned identity keys of the peer devices of one device."""

    def __init__(self) -> None:
        """Start empty."""
        self._sessions: dict[str, list[Session]] = {}
        self._identities: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"<SessionBook devices={len(self._sessions)}>"

    def identity(self, device_id: str) -> bytes | None:
        """The identity key pinned for a device, if any.

        Args:
            device_id: Peer device id.

        Returns:
            The 32-byte Ed25519 key or ``None``.
        """
        return self._identities.get(device_id)

    def pin(self, device_id: str, identity_key: bytes) -> None:
        """Pin a device's identity key (rule 4).

        Args:
            device_id: Peer device id.
            identity_key: Its Ed25519 public key.

        Raises:
            InvalidMessage: a different key is already pinned for that device.
        """
        pinned = self._identities.get(device_id)
        if pinned is not None and not constant_time_equal(pinned, identity_key):
            raise InvalidMessage()
        self._identities[device_id] = identity_key

    def has_session(self, device_id: str) -> bool:
        """Whether we can encrypt for a device without fetching its bundle.

        Args:
            device_id: Peer device id.

        Returns:
            True if a session exists.
        """
        return bool(self._sessions.get(device_id))

    def start(self, own: DeviceKeys, device_id: str, bundle: PreKeyBundle) -> None:
        """Start a session from a bundle served by the server (X3DH initiator).

        Args:
            own: Our device keys.
            device_id: The bundle's device.
            bundle: Its prekey bundle.

        Raises:
            InvalidMessage: bad signature, or the bundle's identity key is not the one
                pinned for that device.
        """
        self.pin(device_id, bundle.identity_key)
        self._put_front(device_id, initiate_session(own, bundle))

    def encrypt(self, device_id: str, plaintext: bytes) -> bytes:
        """Encrypt for a device with its current session.

        Args:
            device_id: Peer device id (:meth:`has_session` must be true).
            plaintext: The franked payload.

        Returns:
            The envelope bytes.

        Raises:
            KeyError: no session with that device.
        """
        return self._sessions[device_id][0].encrypt(plaintext)

    def decrypt(self, own: DeviceKeys, device_id: str, envelope: bytes) -> tuple[bytes, DeviceKeys]:
        """Decrypt an envelope from a device (rules 2, 3, 5).

        Args:
            own: Our device keys.
            device_id: The sender device id, as the server says.
            envelope: The pairwise envelope (untrusted).

        Returns:
            The plaintext and our device keys, without the one-time prekey a new
            session used (persist them).

        Raises:
            InvalidMessage: no session decrypts it and it does not start one.
        """
        kept = self._sessions.get(device_id, [])
        for index, session in enumerate(kept):
            try:
                plaintext = session.decrypt(envelope)
            except InvalidMessage:
                continue
            kept.insert(0, kept.pop(index))
            return plaintext, own
        parsed = parse_envelope(envelope)
        if not isinstance(parsed, PreKeyMessage):
            raise InvalidMessage()
        for session in kept:
            prekey = session.to_dict()["prekey"]
            if b64url_decode(prekey["ek"]) == parsed.ephemeral_key:
                raise InvalidMessage()
        pinned = self._identities.get(device_id)
        if pinned is not None and not constant_time_equal(pinned, parsed.identity_key):
            raise InvalidMessage()
        accepted = accept_session(own, envelope)
        self.pin(device_id, parsed.identity_key)
        self._put_front(device_id, accepted.session)
        if accepted.used_one_time_prekey_id is not None:
            own = own.without_one_time_prekey(accepted.used_one_time_prekey_id)
        return accepted.plaintext, own

    def forget(self, device_id: str) -> None:
        """Drop every session with a device (it was removed), keeping its pinned key.

        Args:
            device_id: Peer device id.
        """
        self._sessions.pop(device_id, None)

    def _put_front(self, device_id: str, session: Session) -> None:
        kept = self._sessions.setdefault(device_id, [])
        kept.insert(0, session)
        del kept[MAX_SESSIONS_PER_DEVICE:]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (secret: session keys).

        Returns:
            The dict.
        """
        return {
            "sessions": {d: [s.to_dict() for s in kept] for d, kept in self._sessions.items()},
            "identities": {d: b64url_encode(k) for d, k in self._identities.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionBook:
        """Restore from :meth:`to_dict`.

        Args:
            data: The saved dict.

        Returns:
            The book.

        Raises:
            InvalidMessage: malformed data.
        """
        book = cls()
        try:
            for device_id, kept in data["sessions"].items():
                book._sessions[str(device_id)] = [Session.from_dict(s) for s in kept]
            for device_id, key in data["identities"].items():
                book._identities[str(device_id)] = b64url_decode(key, 32)
        except (KeyError, TypeError, AttributeError):
            raise InvalidMessage() from None
        return book
