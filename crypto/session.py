"""Pairwise sessions: X3DH then the Double Ratchet, with an explicit life cycle.

Rules of the session state machine (all of them live in :data:`TRANSITIONS`):

1. A session is created either by :func:`initiate_session` (we fetched the peer's
   prekey bundle) or by :func:`accept_session` (we received a prekey message).
2. An initiator session starts ``PENDING``: we cannot know the peer got our X3DH
   values, so *every* message we send while pending is a prekey message (type 0x01)
   carrying them (X3DH spec §3.3; Signal does the same). Any of those messages can
   therefore start the session on the peer's side, even if earlier ones were lost.
3. The first message successfully decrypted from the peer moves ``PENDING`` to
   ``ESTABLISHED``; from then on we send plain ratchet messages (type 0x02).
4. A responder session starts ``ESTABLISHED``. It still accepts late prekey messages,
   but only those carrying the same initiator identity key and ephemeral key as the
   one that created it.
5. ``close()`` moves any state to ``CLOSED``; nothing else is allowed from there.
6. Only *successful* operations move the machine; a failed decryption changes
   nothing, neither the life-cycle state nor the ratchet.
7. Any move missing from the table raises :class:`~crypto.errors.CryptoUsageError`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crypto.encoding import b64url_encode, field_bytes, field_uint32
from crypto.envelope import MAX_PLAINTEXT_SIZE, PreKeyMessage, RatchetMessage, parse_envelope
from crypto.errors import CryptoUsageError, InvalidMessage
from crypto.hazmat import primitives as prim
from crypto.hazmat import ratchet, x3dh
from crypto.hazmat.kdf import constant_time_equal
from crypto.keys import DeviceKeys, IdentityKeyPair, PreKeyBundle

__all__ = [
    "TRANSITIONS",
    "AcceptedSession",
    "Session",
    "SessionEvent",
    "SessionState",
    "accept_session",
    "initiate_session",
]


class SessionState(enum.Enum):
    """Life-cycle states of a pairwise session."""

    PENDING = "pending"
    ESTABLISHED = "established"
    CLOSED = "closed"


class SessionEvent(enum.Enum):
    """Things that happen to a session."""

    SEND = "send"
    RECEIVE = "receive"
    CLOSE = "close"


TRANSITIONS: Mapping[tuple[SessionState, SessionEvent], SessionState] = {
    (SessionState.PENDING, SessionEvent.SEND): SessionState.PENDING,
    (SessionState.PENDING, SessionEvent.RECEIVE): SessionState.ESTABLISHED,
    (SessionState.PENDING, SessionEvent.CLOSE): SessionState.CLOSED,
    (SessionState.ESTABLISHED, SessionEvent.SEND): SessionState.ESTABLISHED,
    (SessionState.ESTABLISHED, SessionEvent.RECEIVE): SessionState.ESTABLISHED,
    (SessionState.ESTABLISHED, SessionEvent.CLOSE): SessionState.CLOSED,
}


def _next_state(state: SessionState, event: SessionEvent) -> SessionState:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise CryptoUsageError(f"illegal session move: {event.value} in {state.value}") from None


@dataclass(frozen=True)
class _PrekeyHeader:
    """The X3DH values repeated in prekey messages (initiator) or expected (responder)."""

    identity_key: bytes
    ephemeral_key: bytes
    signed_prekey_id: int
    one_time_prekey_id: int | None


class Session:
    """A pairwise session with one peer device; persist it with :meth:`to_bytes`.

    Not thread-safe; the caller serialises operations per session.
    """

    def __init__(
        self,
        state: SessionState,
        ratchet_state: ratchet.RatchetState,
        prekey_header: _PrekeyHeader,
        *,
        is_initiator: bool,
        rng: prim.Rng = prim.default_rng,
    ) -> None:
        """Build a session from its parts; use the factory functions instead.

        Args:
            state: Life-cycle state.
            ratchet_state: Double Ratchet state.
            prekey_header: X3DH values of the session's creation.
            is_initiator: Whether we ran the initiator side of X3DH.
            rng: Random source for ratchet keys.
        """
        self._state = state
        self._ratchet = ratchet_state
        self._prekey_header = prekey_header
        self._is_initiator = is_initiator
        self._rng = rng

    def __repr__(self) -> str:
        return f"<Session {self._state.value} peer={self.peer_identity_key.hex()[:16]}…>"

    @property
    def state(self) -> SessionState:
        """The life-cycle state."""
        return self._state

    @property
    def peer_identity_key(self) -> bytes:
        """The peer's Ed25519 identity public key (compare with safety numbers)."""
        ad = self._ratchet.associated_data
        return ad[32:] if self._is_initiator else ad[:32]

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt one message and return the envelope bytes.

        Args:
            plaintext: At most ``MAX_PLAINTEXT_SIZE`` bytes.

        Returns:
            A prekey message while ``PENDING``, a ratchet message otherwise.

        Raises:
            CryptoUsageError: the session is closed or the plaintext is too large.
        """
        next_state = _next_state(self._state, SessionEvent.SEND)
        if len(plaintext) > MAX_PLAINTEXT_SIZE:
            raise CryptoUsageError("plaintext too large")
        new_ratchet, message = ratchet.encrypt(self._ratchet, plaintext)
        if next_state is SessionState.PENDING:
            h = self._prekey_header
            envelope = PreKeyMessage(
                h.identity_key, h.ephemeral_key, h.signed_prekey_id, h.one_time_prekey_id, message
            ).encode()
        else:
            envelope = message.encode()
        self._ratchet, self._state = new_ratchet, next_state
        return envelope

    def decrypt(self, envelope: bytes) -> bytes:
        """Decrypt one envelope from the peer; on failure nothing changes.

        Args:
            envelope: Received bytes (untrusted).

        Returns:
            The plaintext.

        Raises:
            CryptoUsageError: the session is closed.
            InvalidMessage: any problem with the envelope (opaque).
        """
        next_state = _next_state(self._state, SessionEvent.RECEIVE)
        parsed = parse_envelope(envelope)
        if isinstance(parsed, PreKeyMessage) and not self._is_initiator:
            h = self._prekey_header
            if not (
                constant_time_equal(parsed.identity_key, h.identity_key)
                and constant_time_equal(parsed.ephemeral_key, h.ephemeral_key)
            ):
                raise InvalidMessage()
            message = parsed.message
        elif isinstance(parsed, RatchetMessage):
            message = parsed
        else:
            raise InvalidMessage()
        self._ratchet, plaintext = ratchet.decrypt(self._ratchet, message, self._rng)
        self._state = next_state
        return plaintext

    def close(self) -> None:
        """Close the session for good.

        Raises:
            CryptoUsageError: already closed.
        """
        self._state = _next_state(self._state, SessionEvent.CLOSE)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of the whole session (secret).

        Returns:
            The dict.
        """
        h = self._prekey_header
        return {
            "version": 1,
            "state": self._state.value,
            "initiator": self._is_initiator,
            "prekey": {
                "ik": b64url_encode(h.identity_key),
                "ek": b64url_encode(h.ephemeral_key),
                "spk_id": h.signed_prekey_id,
                "opk_id": h.one_time_prekey_id,
            },
            "ratchet": self._ratchet.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], rng: prim.Rng = prim.default_rng) -> Session:
        """Restore a session saved with :meth:`to_dict`.

        Args:
            data: The saved dict.
            rng: Random source.

        Returns:
            The session.

        Raises:
            InvalidMessage: malformed data.
        """
        try:
            if data["version"] != 1 or not isinstance(data["initiator"], bool):
                raise InvalidMessage()
            p = data["prekey"]
            header = _PrekeyHeader(
                field_bytes(p, "ik", 32),
                field_bytes(p, "ek", 32),
                field_uint32(p, "spk_id"),
                None if p["opk_id"] is None else field_uint32(p, "opk_id"),
            )
            return cls(
                SessionState(data["state"]),
                ratchet.RatchetState.from_dict(data["ratchet"]),
                header,
                is_initiator=data["initiator"],
                rng=rng,
            )
        except (KeyError, TypeError, ValueError):
            raise InvalidMessage() from None

    def to_bytes(self) -> bytes:
        """Return :meth:`to_dict` as canonical UTF-8 JSON.

        Returns:
            The bytes.
        """
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes, rng: prim.Rng = prim.default_rng) -> Session:
        """Restore a session saved with :meth:`to_bytes`.

        Args:
            data: The saved bytes.
            rng: Random source.

        Returns:
            The session.

        Raises:
            InvalidMessage: malformed data.
        """
        try:
            loaded = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise InvalidMessage() from None
        if not isinstance(loaded, dict):
            raise InvalidMessage()
        return cls.from_dict(loaded, rng)


def initiate_session(
    identity: IdentityKeyPair | DeviceKeys,
    bundle: PreKeyBundle,
    rng: prim.Rng = prim.default_rng,
) -> Session:
    """Start a session with a peer device from its prekey bundle (X3DH spec §3.3).

    Args:
        identity: Our identity key (or all our device keys).
        bundle: The peer's bundle as served by the server.
        rng: Random source.

    Returns:
        A ``PENDING`` session; its first :meth:`Session.encrypt` gives a prekey message.

    Raises:
        InvalidMessage: the bundle's signature or keys are invalid.
    """
    own = identity.identity if isinstance(identity, DeviceKeys) else identity
    agreement = x3dh.initiate(own, bundle, rng)
    ratchet_state = ratchet.init_initiator(
        agreement.shared_secret, agreement.signed_prekey, agreement.associated_data, rng
    )
    header = _PrekeyHeader(
        own.public,
        agreement.ephemeral_key,
        agreement.signed_prekey_id,
        agreement.one_time_prekey_id,
    )
    return Session(SessionState.PENDING, ratchet_state, header, is_initiator=True, rng=rng)


@dataclass(frozen=True)
class AcceptedSession:
    """Result of :func:`accept_session`.

    Attributes:
        session: The new ``ESTABLISHED`` session.
        plaintext: The first message.
        used_one_time_prekey_id: Delete this one-time prekey now
            (:meth:`DeviceKeys.without_one_time_prekey`), or ``None``.
    """

    session: Session
    plaintext: bytes
    used_one_time_prekey_id: int | None


def accept_session(
    own: DeviceKeys, envelope: bytes, rng: prim.Rng = prim.default_rng
) -> AcceptedSession:
    """Create a session from a received prekey message (X3DH spec §3.4).

    Args:
        own: Our private keys.
        envelope: The received bytes (must be a prekey message).
        rng: Random source.

    Returns:
        The session, the first plaintext and the one-time prekey id to delete.

    Raises:
        InvalidMessage: not a valid prekey message for our keys (opaque).
    """
    parsed = parse_envelope(envelope)
    if not isinstance(parsed, PreKeyMessage):
        raise InvalidMessage()
    response = x3dh.respond(
        own,
        parsed.identity_key,
        parsed.ephemeral_key,
        parsed.signed_prekey_id,
        parsed.one_time_prekey_id,
    )
    initial = ratchet.init_responder(
        response.shared_secret, response.signed_prekey, response.associated_data
    )
    ratchet_state, plaintext = ratchet.decrypt(initial, parsed.message, rng)
    header = _PrekeyHeader(
        parsed.identity_key,
        parsed.ephemeral_key,
        parsed.signed_prekey_id,
        parsed.one_time_prekey_id,
    )
    session = Session(SessionState.ESTABLISHED, ratchet_state, header, is_initiator=False, rng=rng)
    return AcceptedSession(session, plaintext, response.used_one_time_prekey_id)
